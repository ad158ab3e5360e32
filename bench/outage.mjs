/**
 * `node bench/outage.mjs`: PostgreSQL taken away from a server under load, and given back.
 *
 * A server (`bin/promoguard.js serve`, as `npm start` runs it) on a PostgreSQL of the bench's own (port
 * 25436, a fresh data folder; never the shared server), 16 clients redeeming a public code with unique
 * Idempotency-Keys without pause. For each outage mode — `immediate` and `fast` (pg_ctl stop) and
 * `freeze` (SIGSTOP of the postmaster and its backends: a hung server) — the database goes away for
 * `--down` seconds (10) and comes back. Printed per mode: whether the process stayed up, what it
 * answered while the database was away (statuses and codes, how fast), how long after the database
 * returned the first redemption succeeded, and whether every acknowledged (201) redemption is in the
 * database with its ledger entries and its outbox event.
 *
 * Options: --modes immediate,fast,freeze  --down 10  --clients 16  --warmup 3  --after 3
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { Api } from './lib/api.mjs';
import { startServer } from './lib/server.mjs';
import { percentile } from './lib/stats.mjs';

const PG_PORT = 25436;
const run = promisify(execFile);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const { values: args } = parseArgs({
  options: {
    modes: { type: 'string', default: 'immediate,fast,freeze' },
    down: { type: 'string', default: '10' },
    clients: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '3' },
    after: { type: 'string', default: '3' },
  },
});
const MODES = args.modes.split(',').map((m) => m.trim());
const DOWN_MS = Number(args.down) * 1000;
const CLIENTS = Number(args.clients);
const WARMUP_MS = Number(args.warmup) * 1000;
const AFTER_MS = Number(args.after) * 1000;
for (const m of MODES) {
  if (!['immediate', 'fast', 'freeze'].includes(m)) throw new Error(`unknown mode ${m}`);
}

// ---- a PostgreSQL of the bench's own -------------------------------------------------------------

function postgresBin() {
  const root = '/usr/lib/postgresql';
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const versions = existsSync(root)
    ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql (set PG_BIN)');
  return path.join(root, versions[0], 'bin');
}

async function startPostgres(port) {
  const bin = postgresBin();
  // PostgreSQL refuses to run as root: then it runs as the postgres user.
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), `promoguard-outage-${port}-`));
  const data = path.join(dir, 'data');
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const tool = (name, argv) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', path.join(bin, name), ...argv], { cwd: dir })
      : run(path.join(bin, name), argv, { cwd: dir });
  await tool('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8']);
  const options = `-p ${port} -k /tmp -c listen_addresses='127.0.0.1' -c max_connections=100`;
  const pids = () => {
    const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
    return [pid, ...children];
  };
  const signal = (sig, list) => {
    for (const pid of list) {
      try {
        process.kill(pid, sig);
      } catch {
        // Exited meanwhile.
      }
    }
  };
  const instance = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => tool('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']),
    stop: (mode) => tool('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']),
    freeze: () => signal('SIGSTOP', pids()),
    thaw: () => signal('SIGCONT', pids().reverse()),
    async destroy() {
      try {
        signal('SIGCONT', pids());
        await instance.stop('immediate');
      } catch {
        // Not running.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await instance.start();
  return instance;
}

// ---- load ------------------------------------------------------------------------------------------

let sequence = 0;

function startLoad(url, key, code) {
  const answers = [];
  let running = true;
  const lane = async () => {
    while (running) {
      sequence += 1;
      const idempotencyKey = `outage-${process.pid}-${sequence}`;
      const startedAt = performance.now();
      let answer;
      try {
        const response = await fetch(`${url}/v1/redemptions`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'idempotency-key': idempotencyKey,
          },
          body: JSON.stringify({
            code,
            customer: { id: `cus_${idempotencyKey}` },
            cart: { currency: 'USD', subtotal_minor: 10_000 },
          }),
          signal: AbortSignal.timeout(60_000),
        });
        const text = await response.text();
        let body = {};
        try {
          body = JSON.parse(text);
        } catch {
          body = { code: 'not_json' };
        }
        answer = {
          status: response.status,
          code: body.code,
          id: body.id,
          problem: /^application\/problem\+json/.test(response.headers.get('content-type') ?? ''),
          retryAfter: response.headers.get('retry-after'),
        };
      } catch (err) {
        answer = { status: 0, code: err?.name ?? 'error' };
      }
      answers.push({ ...answer, startedAt, endedAt: performance.now() });
    }
  };
  const lanes = Array.from({ length: CLIENTS }, lane);
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(lanes);
    },
  };
}

// ---- one outage ------------------------------------------------------------------------------------

async function outage(mode, server, postgres, url, key, code) {
  const load = startLoad(url, key, code);
  await sleep(WARMUP_MS);
  const goneAt = performance.now();
  if (mode === 'freeze') postgres.freeze();
  else await postgres.stop(mode);
  await sleep(DOWN_MS);
  const returningAt = performance.now();
  if (mode === 'freeze') postgres.thaw();
  else await postgres.start();
  const backAt = performance.now();
  await sleep(AFTER_MS);
  await load.stop();
  const { answers } = load;

  const during = answers.filter((a) => a.endedAt > goneAt && a.startedAt < returningAt);
  const byStatus = {};
  for (const a of during) {
    const label = `${a.status}${a.code ? ` ${a.code}` : ''}`;
    byStatus[label] = (byStatus[label] ?? 0) + 1;
  }
  const unavailable = during.filter((a) => a.status === 503);
  const latencies = unavailable.map((a) => a.endedAt - a.startedAt).sort((x, y) => x - y);
  const firstServed = answers
    .filter((a) => a.status === 201 && a.endedAt > backAt)
    .reduce((min, a) => Math.min(min, a.endedAt), Number.POSITIVE_INFINITY);
  const acknowledged = answers.filter((a) => a.status === 201).map((a) => a.id);
  return {
    mode,
    processUp: server.exited() === null,
    requests: answers.length,
    during: during.length,
    byStatus,
    fiveHundreds: answers.filter((a) => a.status >= 500 && a.status !== 503).length,
    noRetryAfter: unavailable.filter((a) => a.retryAfter === null || !a.problem).length,
    latency503: latencies.length
      ? { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies.at(-1) }
      : null,
    // From the moment the database was answering again (pg_ctl start returned, or SIGCONT sent).
    servedAfterMs: firstServed - (mode === 'freeze' ? returningAt : backAt),
    acknowledged,
  };
}

async function verify(databaseUrl, ids) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT r.id,
              (SELECT count(*) FROM ledger_entries l WHERE l.redemption_id = r.id)::int AS ledger,
              (SELECT count(*) FROM outbox o WHERE o.aggregate_id = r.id AND o.type = 'redemption.created')::int AS events
         FROM redemptions r WHERE r.id = ANY($1)`,
      [ids],
    );
    return {
      acknowledged: ids.length,
      stored: rows.length,
      withoutLedger: rows.filter((r) => r.ledger === 0).length,
      withoutEvent: rows.filter((r) => r.events !== 1).length,
    };
  } finally {
    await client.end();
  }
}

// ---- main ------------------------------------------------------------------------------------------

const postgres = await startPostgres(PG_PORT);
let server;
try {
  server = await startServer({
    DATABASE_URL: postgres.url,
    // One address sends everything here: the per-address limits would refuse the load itself.
    RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '1000000',
    LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '1000000',
  });
  const admin = new Api(server.url, server.adminKey);
  const campaign = await admin.must(201, 'POST', '/v1/campaigns', {
    name: 'outage bench',
    currency: 'USD',
    status: 'active',
    starts_at: '2020-01-01T00:00:00Z',
    discount: { type: 'fixed_amount', amount_minor: 500 },
    redemption_cap: 10_000_000,
  });
  const code = 'OUTAGEBENCH';
  await admin.must(201, 'POST', `/v1/campaigns/${campaign.id}/codes`, { code });
  const checkout = (await admin.must(201, 'POST', '/v1/api-keys', { name: 'outage', scopes: ['checkout'] }))
    .secret;

  const pid = server.pid;
  process.stdout.write(
    `outage bench: ${CLIENTS} clients redeeming, PostgreSQL away ${DOWN_MS / 1000} s per mode; server pid ${pid}\n\n`,
  );
  const results = [];
  for (const mode of MODES) {
    const errorsBefore = server.log.errors;
    const result = await outage(mode, server, postgres, server.url, checkout, code);
    result.errorLines = server.log.errors - errorsBefore;
    result.stored = await verify(postgres.url, result.acknowledged);
    results.push(result);
    const r = result;
    const ms = (x) => `${Math.round(x)} ms`;
    process.stdout.write(
      [
        `mode ${mode}`,
        `  process up throughout:            ${r.processUp ? 'yes' : 'NO'} (pid ${pid})`,
        `  requests answered (whole run):    ${r.requests}`,
        `  answers while away:               ${r.during} ${JSON.stringify(r.byStatus)}`,
        `  5xx other than 503 (whole run):   ${r.fiveHundreds}`,
        `  503 without Retry-After/problem:  ${r.noRetryAfter}`,
        `  503 latency p50 / p99 / max:      ${r.latency503 ? `${ms(r.latency503.p50)} / ${ms(r.latency503.p99)} / ${ms(r.latency503.max)}` : 'n/a'}`,
        `  first 201 after the return:       ${Number.isFinite(r.servedAfterMs) ? ms(r.servedAfterMs) : 'NEVER'}`,
        `  acknowledged (201) / stored:      ${r.stored.acknowledged} / ${r.stored.stored} (without ledger: ${r.stored.withoutLedger}, without event: ${r.stored.withoutEvent})`,
        `  error lines logged:               ${r.errorLines}`,
        '',
      ].join('\n'),
    );
  }
  if (server.log.lastErrors.length) {
    process.stdout.write(`last error lines:\n  ${server.log.lastErrors.join('\n  ')}\n`);
  }
  const ok = results.every(
    (r) =>
      r.processUp &&
      r.fiveHundreds === 0 &&
      r.noRetryAfter === 0 &&
      r.servedAfterMs < 1000 &&
      r.stored.stored === r.stored.acknowledged &&
      r.stored.withoutLedger === 0 &&
      r.stored.withoutEvent === 0,
  );
  process.stdout.write(`\nverdict: ${ok ? 'held' : 'DID NOT HOLD'}\n`);
  process.exitCode = ok ? 0 : 1;
} finally {
  await server?.stop();
  await postgres.destroy();
}
