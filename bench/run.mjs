/**
 * `npm run bench` (quick) and `npm run bench -- --full`: Promoguard over HTTP next to its limit, the
 * one statement a redemption issues driven straight at the database, measured in the same run on the
 * same machine state, on PostgreSQL and on PGlite. Prints every figure beside its limit and the ratio,
 * the verdict per target, and writes the results as JSON under bench/results/.
 *
 * The machine is shared and noisy: only figures measured side by side are compared, and the full mode
 * repeats every load and takes medians (of the ratios too, each paired within one repeat).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../dist/store/connect.js';
import { Api } from './lib/api.mjs';
import { cpuPerOp, startCpuMeter } from './lib/cpu.mjs';
import { checkFidelity } from './lib/fidelity.mjs';
import { httpLoad } from './lib/http-load.mjs';
import { CODE_ROWS_SQL, driveRedeem, ipFor, openBenchDb, SUBTOTAL_MINOR, USER_AGENT } from './lib/limit.mjs';
import { findPgbench, PGBENCH_TABLE, pgbenchPlan, runPgbench, writeScript } from './lib/pgbench.mjs';
import { CodePool, reserve } from './lib/pool.mjs';
import { printReport, summarizeBackend, verdicts } from './lib/report.mjs';
import { readMemory, START_NODE_FLAGS, sampleMemory, startServer } from './lib/server.mjs';
import {
  createCheckoutKey,
  createHot,
  createSpread,
  generateMore,
  HOT_CAP,
  HOT_CODE,
  HOT_NAME,
  HOT64_NAME,
  SPREAD_NAME,
} from './lib/setup.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `npm run bench [-- options]

  --full                     30 s per load, 3 repeats, medians (default: quick, 4 s, 1 repeat)
  --duration <s>             seconds per load (overrides the mode)
  --repeats <n>              repeats of every load (overrides the mode)
  --backends <list>          postgres,pglite (default both)
  --connections <n>          in-flight requests of the redemption loads and of the limit (default 16)
  --hot-connections <n>      clients of the hot-code cap check (default 64)
  --validation-rate <n>      fixed rate of the validation load, req/s (default 1000)
  --validation-connections <n>  autocannon connections of the validation load (default 4)
  --campaigns <n>            campaigns the spread codes are spread over (default 200)
  --database-url <url>       PostgreSQL maintenance database (default $BENCH_DATABASE_URL or
                             postgres://postgres@127.0.0.1:5432/postgres); a fresh database is made
  --redis                    give the server REDIS_URL=redis://127.0.0.1:6379 (default: the in-memory
                             limiter, the real default); --redis-url <url> for another Redis
  --skip-pgbench             do not run pgbench even where it is installed
  --keep-database            leave the PostgreSQL database in place afterwards (its name is printed),
                             to inspect or profile it; drop it yourself
  --help`;

const options = parseOptions(process.argv.slice(2));

/** Cleanup steps (stop servers, drop databases, remove folders), run once, also on Ctrl-C. */
const cleanups = [];
let cleaning;
function cleanupAll() {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const step = cleanups.pop();
      try {
        await step();
      } catch (err) {
        process.stderr.write(`bench cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
    cleanupAll().finally(() => process.exit(130));
  });
}

function parseOptions(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        full: { type: 'boolean', default: false },
        duration: { type: 'string' },
        repeats: { type: 'string' },
        backends: { type: 'string', default: 'postgres,pglite' },
        connections: { type: 'string', default: '16' },
        'hot-connections': { type: 'string', default: '64' },
        'validation-rate': { type: 'string', default: '1000' },
        'validation-connections': { type: 'string', default: '4' },
        campaigns: { type: 'string', default: '200' },
        'database-url': {
          type: 'string',
          default: process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
        },
        redis: { type: 'boolean', default: false },
        'redis-url': { type: 'string' },
        'skip-pgbench': { type: 'boolean', default: false },
        'keep-database': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      allowPositionals: false,
    });
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name, value, min, max) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      process.stderr.write(`bench: --${name} must be a whole number from ${min} to ${max}\n${USAGE}\n`);
      process.exit(2);
    }
    return n;
  };
  const backends = values.backends.split(',').map((b) => b.trim());
  for (const b of backends) {
    if (b !== 'postgres' && b !== 'pglite') {
      process.stderr.write(`bench: unknown backend ${b}\n`);
      process.exit(2);
    }
  }
  const mode = values.full ? 'full' : 'quick';
  return {
    mode,
    durationSec: int('duration', values.duration ?? (values.full ? 30 : 4), 1, 600),
    repeats: int('repeats', values.repeats ?? (values.full ? 3 : 1), 1, 20),
    // Unmeasured lead-in of every load: the server's JIT needs a few thousand requests to settle, and
    // until it has, every redemption costs more CPU than it will for the rest of the load.
    warmupSec: values.full ? 3 : 2,
    backends,
    connections: int('connections', values.connections, 1, 256),
    hotConnections: int('hot-connections', values['hot-connections'], 1, 1024),
    validationRate: int('validation-rate', values['validation-rate'], 1, 100_000),
    validationConnections: int('validation-connections', values['validation-connections'], 1, 1024),
    campaigns: int('campaigns', values.campaigns, 1, 1000),
    databaseUrl: values['database-url'],
    redisUrl: values['redis-url'] ?? (values.redis ? 'redis://127.0.0.1:6379' : null),
    pgbench: values['skip-pgbench'] ? null : findPgbench(),
    keepDatabase: values['keep-database'],
    validationCodes: 2000,
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line) => process.stderr.write(`  · ${line}\n`);

/** A distinct customer, client address and Idempotency-Key for every HTTP request of the whole run. */
let requestSeq = 0;
const RUN_ID = randomBytes(4).toString('hex');

function checkoutBody(code, n, withOrder) {
  return {
    code,
    customer: { id: `cus_bench_${n}` },
    cart: { currency: 'USD', subtotal_minor: SUBTOTAL_MINOR },
    ...(withOrder ? { order_id: `ord_bench_${n}` } : {}),
    context: { ip: ipFor(n), user_agent: USER_AGENT },
  };
}

function redemptionFrom(next) {
  return () => {
    const code = next();
    if (code === null) return null;
    const n = requestSeq++;
    return { idempotencyKey: `bench-${RUN_ID}-${n}`, body: checkoutBody(code, n, true) };
  };
}

/** Codes per second each spread consumer may take, for sizing the pool; raised to what was seen. */
const DEFAULT_RATES = {
  postgres: { limit: 3500, pgbench: 3500, http: 1500 },
  pglite: { limit: 2000, pgbench: 0, http: 600 },
};

function spreadNeed(b, rates) {
  const d = options.durationSec;
  const w = options.warmupSec;
  return Math.ceil(
    rates.limit * (d + w) * 1.3 +
      (b.pgbench ? rates.pgbench * d * 1.6 : 0) +
      rates.http * (d + w) * 1.3 +
      options.connections * 4 +
      500,
  );
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const startedAt = new Date();
  const environment = describeEnvironment();
  process.stderr.write(
    `Promoguard bench (${options.mode}): ${options.durationSec} s per load, ${options.repeats} repeat(s), ` +
      `backends ${options.backends.join(', ')}\n`,
  );
  const results = {
    version: 1,
    mode: options.mode,
    startedAt: startedAt.toISOString(),
    options: { ...options, pgbench: options.pgbench ?? null },
    environment,
    backends: {},
  };
  try {
    for (const backend of options.backends) {
      process.stderr.write(`${backend}:\n`);
      const run = backend === 'postgres' ? runPostgres : runPglite;
      const started = performance.now();
      try {
        results.backends[backend] = await run();
      } catch (err) {
        process.stderr.write(`  ! ${backend} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        results.backends[backend] = {
          status: 'failed',
          error: String(err instanceof Error ? err.message : err),
        };
      } finally {
        await cleanupAll();
        cleaning = undefined;
      }
      if (results.backends[backend].status === 'ran') {
        results.backends[backend].summary = summarizeBackend(results.backends[backend], options);
      }
      results.backends[backend].seconds = Math.round((performance.now() - started) / 100) / 10;
    }
  } finally {
    await cleanupAll();
  }
  results.finishedAt = new Date().toISOString();
  results.environment.loadAvgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  results.targets = verdicts(results, options);
  const file = writeResults(results);
  printReport(results, options, path.relative(ROOT, file));
  await cleanupAll();
}

function describeEnvironment() {
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  const cpus = os.cpus();
  return {
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? null,
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    loadAvgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    commit,
    pgbench: options.pgbench,
  };
}

function writeResults(results) {
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}-${results.mode}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

// --------------------------------------------------------------------------------------- PostgreSQL

async function runPostgres() {
  const admin = new pg.Client({
    connectionString: options.databaseUrl,
    application_name: 'promoguard-bench',
  });
  try {
    await admin.connect();
  } catch (err) {
    say(`PostgreSQL not reachable at ${redact(options.databaseUrl)} (${err.message}): skipped`);
    return { status: 'skipped', reason: `not reachable: ${err.message}` };
  }
  cleanups.push(() => admin.end());
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  const dbName = `promoguard_bench_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
  cleanups.push(async () => {
    if (options.keepDatabase) {
      say(`kept database ${dbName} (--keep-database)`);
      return;
    }
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
    say(`dropped database ${dbName}`);
  });
  const url = new URL(options.databaseUrl);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'promoguard-bench-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  say(`database ${dbName}`);

  const b = {
    name: 'postgres',
    limitName: 'limit(pg)',
    pgbench: options.pgbench,
    rates: { ...DEFAULT_RATES.postgres },
    backendPids: async () =>
      (await admin.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName])).rows.map(
        (r) => r.pid,
      ),
  };
  const deadlocks = async () =>
    Number(
      (await admin.query('SELECT deadlocks FROM pg_stat_database WHERE datname = $1', [dbName])).rows[0]
        .deadlocks,
    );

  const server = await start(b, { DATABASE_URL: databaseUrl });
  const out = {
    status: 'ran',
    version: `PostgreSQL ${version}`,
    serverEnv: serverEnvDescription(),
    memory: { afterStart: readMemory(server.pid).rss },
    repeats: [],
  };
  const adminApi = new Api(server.url, server.adminKey);
  const setup = await setUp(b, adminApi, spreadNeed(b, b.rates));
  out.memory.afterSetup = readMemory(server.pid).rss;
  out.setupSeconds = setup.seconds;

  const benchDb = await openBenchDb('postgres', { databaseUrl, connections: 1 });
  cleanups.push(() => benchDb.close());
  if (b.pgbench) {
    await benchDb.query(
      `CREATE TABLE ${PGBENCH_TABLE} (n integer PRIMARY KEY, code_id text NOT NULL, campaign_id text NOT NULL,
        version integer NOT NULL)`,
      [],
    );
  }
  /**
   * Every update of the hot code leaves a dead version of its code and campaign rows. Autovacuum
   * clears them in service; where it is off (this bench's server may be tuned for tests) they pile up
   * and each hot load would start slower than the one before, so repeats would not be comparable. So
   * every hot load starts from vacuumed hot rows.
   */
  const vacuumHotRows = () => benchDb.query('VACUUM codes, campaigns', []);
  /**
   * The limit's redemptions are real outbox events: the running server delivers them and its
   * detectors read each one's identifiers (there is no telemetry of them on the node). That is work
   * the next HTTP load did not cause, so each HTTP load starts once they are all delivered (limit and
   * pgbench loads alike).
   */
  const deliverLimitEvents = async (phase) => {
    const started = performance.now();
    let left = 0;
    for (let i = 0; i < 1200; i++) {
      const [row] = await benchDb.query(
        'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
        [],
      );
      left = row.n;
      if (left === 0) break;
      await sleep(100);
    }
    const ms = Math.round(performance.now() - started);
    say(
      left === 0
        ? `limit events of the ${phase} load delivered after ${ms} ms`
        : `limit events of the ${phase} load: ${left} still undelivered after ${ms} ms; the HTTP load runs beside them`,
    );
  };
  out.autovacuum = (await admin.query('SHOW autovacuum')).rows[0].autovacuum;
  const deadlocksBefore = await deadlocks();
  let validationRows = null;
  for (let rep = 1; rep <= options.repeats; rep++) {
    say(`repeat ${rep}/${options.repeats}`);
    const need = spreadNeed(b, b.rates);
    let rows = await unusedSpreadRows(benchDb);
    validationRows ??= reserve(rows, options.validationCodes);
    const reserved = new Set(validationRows.map((r) => r.code_id));
    rows = rows.filter((r) => !reserved.has(r.code_id));
    if (rows.length < need) {
      await topUp(adminApi, setup.campaignIds, need - rows.length);
      rows = (await unusedSpreadRows(benchDb)).filter((r) => !reserved.has(r.code_id));
    }
    // No VACUUM/ANALYZE here: the limit and the service run on the tables as the service leaves them.
    // On PGlite a VACUUM of the freshly loaded codes slows the limit for the rest of the run.
    const pool = new CodePool(rows);
    const hotRow = (await benchDb.query(CODE_ROWS_SQL, [HOT_NAME]))[0];
    const r = { repeat: rep };

    if (!b.hasher) {
      const opened = await openDatabase({ databaseUrl, poolSize: 2 });
      try {
        out.fidelity = await fidelity(b, opened, pool);
      } finally {
        await opened.close();
      }
    }
    const limitDb = await openBenchDb('postgres', { databaseUrl, connections: options.connections });
    try {
      await warmLimit(b, limitDb, pool, rep);
      r.limitSpread = await limitPhase(b, limitDb, () => pool.next(), `l${rep}s`, server.pid);
      // pgbench drives the same statement: size its share of codes from what the driver just did.
      b.rates.pgbench = Math.max(r.limitSpread.rate * 1.3, 200);
      if (b.pgbench) r.pgbenchSpread = await pgbenchPhase(b, benchDb, databaseUrl, tmp, 'spread', pool, rep);
      await deliverLimitEvents('spread');
      r.httpSpread = await httpRedeemPhase(
        b,
        server,
        setup.checkoutKey,
        () => pool.next()?.code ?? null,
        'spread',
        { warm: true },
      );
      await vacuumHotRows();
      r.limitHot = await limitPhase(b, limitDb, () => hotRow, `l${rep}h`, server.pid);
    } finally {
      await limitDb.close();
    }
    await vacuumHotRows();
    if (b.pgbench) r.pgbenchHot = await pgbenchPhase(b, benchDb, databaseUrl, tmp, 'hot', hotRow, rep);
    await deliverLimitEvents('hot');
    await vacuumHotRows();
    r.httpHot = await httpRedeemPhase(b, server, setup.checkoutKey, () => HOT_CODE, 'hot', { warm: false });
    r.validations = await validationPhase(b, server, setup.checkoutKey, validationRows);
    await vacuumHotRows();
    r.hot64 = await hot64Phase(b, server, adminApi, setup.checkoutKey, r.httpHot, rep);
    r.poolLeft = pool.remaining;
    out.repeats.push(r);
    learnRates(b, r);
  }
  // Statistics reach pg_stat_database within a second of a backend going idle.
  await sleep(1500);
  out.deadlocks = (await deadlocks()) - deadlocksBefore;
  out.serverLog = serverLogOf(b);
  return out;
}

function redact(url) {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

function serverEnvDescription() {
  return {
    command: ['node', ...START_NODE_FLAGS, 'bin/promoguard.js', 'serve'].join(' '),
    setByBench: ['HOST=127.0.0.1', 'PORT=0', 'LOG_LEVEL=info', ...(options.redisUrl ? ['REDIS_URL'] : [])],
    defaultsKept: [
      'RATE_LIMIT_PER_MINUTE=60 (per customer and device), RATE_LIMIT_PER_MINUTE_PER_ADDRESS=300',
      'LOCKOUT_AFTER_FAILURES=10',
      'DATABASE_POOL_SIZE=20',
      'OUTBOX_POLL_MS=1000',
      ...(options.redisUrl ? [] : ['REDIS_URL unset (in-memory limiter)']),
    ],
  };
}

// ------------------------------------------------------------------------------------------- PGlite

async function runPglite() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'promoguard-bench-pglite-'));
  cleanups.push(() => {
    rmSync(dataDir, { recursive: true, force: true });
    say(`removed ${dataDir}`);
  });
  say(`data folder ${dataDir}`);
  const b = { name: 'pglite', limitName: 'limit(pglite)', pgbench: null, rates: { ...DEFAULT_RATES.pglite } };
  const env = { PROMOGUARD_DATA_DIR: dataDir };
  let server = await start(b, env);
  const out = {
    status: 'ran',
    version: `PGlite ${pgliteVersion()}`,
    serverEnv: serverEnvDescription(),
    memory: { afterFirstStart: readMemory(server.pid).rss },
    repeats: [],
  };
  const adminKey = server.adminKey;
  const setup = await setUp(b, new Api(server.url, adminKey), spreadNeed(b, b.rates));
  out.memory.afterSetup = readMemory(server.pid).rss;
  out.setupSeconds = setup.seconds;
  let validationRows = null;
  for (let rep = 1; rep <= options.repeats; rep++) {
    say(`repeat ${rep}/${options.repeats}`);
    const need = spreadNeed(b, b.rates);
    // PGlite serves one process: the server stops while the limit runs in this one, on its data folder.
    await server.stop();
    const r = { repeat: rep };
    let pool;
    const db = await openBenchDb('pglite', { dataDir, connections: options.connections });
    try {
      let rows = await unusedSpreadRows(db);
      validationRows ??= reserve(rows, options.validationCodes);
      const reserved = new Set(validationRows.map((row) => row.code_id));
      rows = rows.filter((row) => !reserved.has(row.code_id));
      if (rows.length < need) say(`only ${rows.length} unused codes for an estimated ${need}`);
      pool = new CodePool(rows);
      const hotRow = (await db.query(CODE_ROWS_SQL, [HOT_NAME]))[0];
      if (!b.hasher) out.fidelity = await fidelity(b, db.kysely, pool);
      await warmLimit(b, db, pool, rep);
      r.limitSpread = await limitPhase(b, db, () => pool.next(), `l${rep}s`, null);
      r.limitHot = await limitPhase(b, db, () => hotRow, `l${rep}h`, null);
      // The limit's events would otherwise be delivered by the restarted server during its loads:
      // work the service did not cause. Marked delivered here (bench bookkeeping, bench rows only).
      await db.query('UPDATE outbox SET published_at = now() WHERE published_at IS NULL', []);
    } finally {
      await db.close();
    }
    server = await start(b, env);
    r.memoryAfterRestart = readMemory(server.pid).rss;
    const api = new Api(server.url, adminKey);
    r.httpSpread = await httpRedeemPhase(
      b,
      server,
      setup.checkoutKey,
      () => pool.next()?.code ?? null,
      'spread',
      { warm: true },
    );
    r.httpHot = await httpRedeemPhase(b, server, setup.checkoutKey, () => HOT_CODE, 'hot', { warm: false });
    r.validations = await validationPhase(b, server, setup.checkoutKey, validationRows);
    r.hot64 = await hot64Phase(b, server, api, setup.checkoutKey, r.httpHot, rep);
    r.poolLeft = pool.remaining;
    out.repeats.push(r);
    learnRates(b, r);
    if (rep < options.repeats) {
      const left = pool.remaining;
      const next = spreadNeed(b, b.rates);
      if (left < next) await topUp(api, setup.campaignIds, next - left);
    }
  }
  out.deadlocks = null; // one session: PGlite cannot deadlock
  out.serverLog = serverLogOf(b);
  return out;
}

function pgliteVersion() {
  try {
    const file = path.join(ROOT, 'node_modules', '@electric-sql', 'pglite', 'package.json');
    return JSON.parse(readFileSync(file, 'utf8')).version;
  } catch {
    return '?';
  }
}

// ------------------------------------------------------------------------------------------ helpers

/** Error and warning lines of every server process the backend ran (PGlite restarts it). */
function serverLogOf(b) {
  const logs = (b.servers ?? []).map((s) => s.log);
  return {
    errors: logs.reduce((n, l) => n + l.errors, 0),
    warnings: logs.reduce((n, l) => n + l.warnings, 0),
    lastErrors: logs.flatMap((l) => l.lastErrors).slice(-5),
  };
}

async function start(b, env) {
  // BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the server under load.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const server = await startServer(
    { ...env, ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}) },
    { nodeArgs },
  );
  cleanups.push(() => server.stop());
  b.servers = [...(b.servers ?? []), server];
  say(`server pid ${server.pid} at ${server.url}`);
  return server;
}

async function setUp(b, adminApi, need) {
  const t0 = performance.now();
  const total = need + options.validationCodes;
  const perCampaign = Math.min(100_000, Math.ceil(total / options.campaigns));
  say(
    `setup: ${options.campaigns} campaigns x ${perCampaign} single-use codes, one hot public code (HTTP API)`,
  );
  const checkoutKey = await createCheckoutKey(adminApi);
  const campaignIds = await createSpread(adminApi, {
    campaigns: options.campaigns,
    codesPerCampaign: perCampaign,
  });
  await createHot(adminApi, { name: HOT_NAME, code: HOT_CODE, cap: HOT_CAP });
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  say(`setup took ${seconds} s`);
  return { checkoutKey, campaignIds, seconds, b: b.name };
}

/** More codes for the next repeat, generated through the API like the first ones. */
async function topUp(adminApi, campaignIds, missing) {
  const perCampaign = Math.min(100_000, Math.ceil(missing / campaignIds.length));
  say(`generating ${perCampaign * campaignIds.length} more codes for the next repeat`);
  for (const [i, id] of campaignIds.entries()) await generateMore(adminApi, id, i, perCampaign);
}

async function unusedSpreadRows(db) {
  return db.query(CODE_ROWS_SQL, [`${SPREAD_NAME}%`]);
}

/** Size the next repeat's codes from the fastest rate seen so far (a quiet moment can follow a busy one). */
function learnRates(b, r) {
  const seen = (phase) => (phase && !phase.error ? (phase.rate ?? 0) : 0);
  b.seen ??= { limit: 0, pgbench: 0, http: 0 };
  b.seen.limit = Math.max(b.seen.limit, seen(r.limitSpread));
  b.seen.pgbench = Math.max(b.seen.pgbench, seen(r.pgbenchSpread));
  b.seen.http = Math.max(b.seen.http, seen(r.httpSpread));
  b.rates.limit = Math.max(b.seen.limit * 1.4, 200);
  b.rates.pgbench = Math.max(b.seen.pgbench * 1.4, b.pgbench ? 200 : 0);
  b.rates.http = Math.max(b.seen.http * 1.4, 100);
}

/** Capture the service's own REDEEM_SQL arguments once and compare; keep its identifier hasher. */
async function fidelity(b, opened, pool) {
  const check = await checkFidelity(opened, pool.next());
  b.hasher = check.hasher;
  b.decision = check.decision;
  say(
    check.matches
      ? "limit arguments match the service's (checked against a captured call)"
      : `limit arguments DIFFER from the service's: ${JSON.stringify(check.differences)}`,
  );
  const { hasher: _hasher, decision: _decision, ...recorded } = check;
  return recorded;
}

async function warmLimit(b, db, pool, rep) {
  await driveRedeem(db, {
    hasher: b.hasher,
    decision: b.decision,
    concurrency: options.connections,
    durationMs: options.warmupSec * 1000,
    nextRow: () => pool.next(),
    tag: `w${rep}`,
  });
}

async function limitPhase(b, db, nextRow, tag, serverPid) {
  const meter = await startCpuMeter({ serverPid, backendPids: b.backendPids });
  const r = await driveRedeem(db, {
    concurrency: options.connections,
    durationMs: options.durationSec * 1000,
    nextRow,
    tag,
    hasher: b.hasher,
    decision: b.decision,
  });
  r.cpu = await meter.stop();
  r.cpuPerOp = cpuPerOp(r.cpu, r.redeemed);
  say(`${b.limitName} ${tag.endsWith('s') ? 'spread' : 'hot'}: ${Math.round(r.rate)} tps`);
  return r;
}

async function pgbenchPhase(b, benchDb, databaseUrl, dir, kind, source, rep) {
  const clients = options.connections;
  let sample;
  let slice = 0;
  if (kind === 'spread') {
    slice = Math.ceil((b.rates.pgbench * options.durationSec * 1.5) / clients) + 20;
    let rows = source.take(slice * clients);
    slice = Math.floor(rows.length / clients);
    rows = rows.slice(0, slice * clients);
    if (slice === 0) return { error: 'no codes left for pgbench' };
    await benchDb.query(`TRUNCATE ${PGBENCH_TABLE}`, []);
    // Client c (0-based) owns rows c*slice+1 .. c*slice+slice, dealt so each client spans the campaigns.
    const n = rows.map((_, i) => (i % clients) * slice + Math.floor(i / clients) + 1);
    await benchDb.query(
      `INSERT INTO ${PGBENCH_TABLE} (n, code_id, campaign_id, version)
       SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::int[])`,
      [n, rows.map((r) => r.code_id), rows.map((r) => r.campaign_id), rows.map((r) => Number(r.version))],
    );
    sample = rows[0];
  } else {
    sample = source;
  }
  const plan = pgbenchPlan(sample, b.hasher, kind, b.decision);
  const script = writeScript(dir, plan, slice);
  // Numbers unique per transaction across every pgbench run of this database.
  const base = (rep * 10 + (kind === 'spread' ? 1 : 2)) * 1e11;
  const defines = { ...plan.defines, i: '0', base: String(base) };
  // pgbench does not read the function's answer: count what was really redeemed, before and after.
  const redeemedSoFar = async () =>
    kind === 'spread'
      ? Number(
          (
            await benchDb.query(
              `SELECT count(*) AS n FROM codes k JOIN ${PGBENCH_TABLE} t ON t.code_id = k.id WHERE k.uses > 0`,
              [],
            )
          )[0].n,
        )
      : Number((await benchDb.query('SELECT uses FROM codes WHERE id = $1', [source.code_id]))[0].uses);
  const before = await redeemedSoFar();
  const meter = await startCpuMeter({ serverPid: null, backendPids: b.backendPids });
  const r = await runPgbench({
    pgbench: b.pgbench,
    databaseUrl,
    script,
    clients,
    durationSec: options.durationSec,
    defines,
  });
  r.cpu = await meter.stop();
  r.redeemed = (await redeemedSoFar()) - before;
  r.cpuPerOp = cpuPerOp(r.cpu, r.transactions);
  r.rate = r.tps;
  r.script = script.text;
  r.slicePerClient = slice || null;
  say(`limit(pgbench) ${kind}: ${Math.round(r.tps ?? 0)} tps`);
  return r;
}

async function measured(b, server, run) {
  const errorsBefore = server.log.errors;
  const memory = sampleMemory(server.pid);
  const meter = await startCpuMeter({ serverPid: server.pid, backendPids: b.backendPids });
  const r = await run();
  r.cpu = await meter.stop();
  r.memory = memory.stop();
  r.serverErrors = server.log.errors - errorsBefore;
  return r;
}

/**
 * `warm`: an unmeasured lead-in first. The spread load has one in every repeat; the hot load follows it
 * on the same code path and goes without, so the hot rows it starts from are as freshly vacuumed as the
 * limit's.
 */
async function httpRedeemPhase(b, server, key, nextCode, label, { warm }) {
  const makeBody = redemptionFrom(nextCode);
  if (warm) {
    await httpLoad({
      url: server.url,
      key,
      path: '/v1/redemptions',
      connections: options.connections,
      durationSec: options.warmupSec,
      makeBody,
      okStatus: 201,
    });
  }
  const r = await measured(b, server, () =>
    httpLoad({
      url: server.url,
      key,
      path: '/v1/redemptions',
      connections: options.connections,
      durationSec: options.durationSec,
      makeBody,
      okStatus: 201,
    }),
  );
  r.cpuPerOp = cpuPerOp(r.cpu, r.ok);
  say(`HTTP ${label} redemptions: ${Math.round(r.rate)} rps`);
  return r;
}

async function validationPhase(b, server, key, rows) {
  let i = 0;
  const load = (durationSec) =>
    httpLoad({
      url: server.url,
      key,
      path: '/v1/validations',
      connections: options.validationConnections,
      overallRate: options.validationRate,
      durationSec,
      makeBody: () => {
        const row = rows[i++ % rows.length];
        return { body: checkoutBody(row.code, requestSeq++, false) };
      },
      okStatus: 200,
    });
  await load(options.warmupSec);
  const r = await measured(b, server, () => load(options.durationSec));
  r.cpuPerOp = cpuPerOp(r.cpu, r.ok);
  say(`HTTP validations: ${Math.round(r.rate)} rps at ${options.validationRate}/s`);
  return r;
}

/**
 * The hot code under many clients, with a cap set to run out about half-way through, so the load
 * crosses the moment of exhaustion. Allowed answers: 201, and 422 redemption_refused because the cap
 * is reached. Everything else (5xx, deadlocks, other refusals, socket errors) fails the target, and so
 * does a count of redemptions other than the cap.
 */
async function hot64Phase(b, server, adminApi, key, hot, rep) {
  const cap = Math.max(100, Math.round((hot?.rate ?? 100) * options.durationSec * 0.5));
  const code = `BENCH64R${rep}`;
  const campaignId = await createHot(adminApi, { name: `${HOT64_NAME} ${rep}`, code, cap });
  const r = await measured(b, server, () =>
    httpLoad({
      url: server.url,
      key,
      path: '/v1/redemptions',
      connections: options.hotConnections,
      durationSec: options.durationSec,
      makeBody: redemptionFrom(() => code),
      okStatus: 201,
    }),
  );
  const campaign = await adminApi.must(200, 'GET', `/v1/campaigns/${campaignId}`);
  r.cap = cap;
  r.redemptionsUsed = campaign.redemptions_used;
  r.capReached = campaign.redemptions_used >= cap;
  const allowed = new Set(['422 redemption_refused:campaign_cap_reached']);
  r.unexpected = Object.fromEntries(Object.entries(r.problems).filter(([label]) => !allowed.has(label)));
  r.clean =
    Object.keys(r.unexpected).length === 0 &&
    r.socketErrors === 0 &&
    r.timeouts === 0 &&
    r.serverErrors === 0 &&
    r.ok === r.redemptionsUsed &&
    r.redemptionsUsed <= cap;
  say(`hot code, ${options.hotConnections} clients: ${r.ok} redeemed of cap ${cap}, clean ${r.clean}`);
  return r;
}

main().catch(async (err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  await cleanupAll();
  process.exit(1);
});
