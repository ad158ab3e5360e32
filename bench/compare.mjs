/**
 * Two builds side by side: this checkout and another (`--base`, e.g. a git worktree of an older
 * commit, built). Both servers run at once; short load chunks alternate between them (ABBA), so the
 * host's slow spells fall on both alike, and each chunk records how much of the host was stolen by
 * other guests. The verdict pools latencies over the pairs of chunks where neither lost more than
 * `--steal-max` of the host. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Api } from './lib/api.mjs';
import { hostTicks } from './lib/cpu.mjs';
import { httpLoad } from './lib/http-load.mjs';
import { ipFor, SUBTOTAL_MINOR, USER_AGENT } from './lib/limit.mjs';
import { readCpuSeconds, startServer } from './lib/server.mjs';
import { createCheckoutKey, createHot, createSpread, HOT_CAP, HOT_CODE, HOT_NAME } from './lib/setup.mjs';
import { percentile } from './lib/stats.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `npm run bench:compare -- --base <checkout> [options]

  --base <dir>               the other build: a checkout with node_modules and dist (e.g.
                             git worktree add ../base <commit> && cd ../base && npm ci)
  --backend <name>           pglite (default) or postgres
  --load <name>              spread (single-use codes over many campaigns, default) or hot (one public code)
  --chunks <n>               chunks per build (default 20)
  --chunk-seconds <s>        seconds per chunk (default 3)
  --connections <n>          in-flight requests (default 16)
  --steal-max <share>        a pair counts as quiet when neither chunk lost more of the host (default 0.1)
  --database-url <url>       PostgreSQL maintenance database (default $BENCH_DATABASE_URL or
                             postgres://postgres@127.0.0.1:5432/postgres); a fresh database per build
  --help`;

const say = (line) => process.stderr.write(`  · ${line}\n`);

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      base: { type: 'string' },
      backend: { type: 'string', default: 'pglite' },
      load: { type: 'string', default: 'spread' },
      chunks: { type: 'string', default: '20' },
      'chunk-seconds': { type: 'string', default: '3' },
      connections: { type: 'string', default: '16' },
      'steal-max': { type: 'string', default: '0.1' },
      'database-url': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const fail = (message) => {
    process.stderr.write(`bench:compare: ${message}\n\n${USAGE}\n`);
    process.exit(2);
  };
  if (!values.base) fail('--base is required');
  const base = path.resolve(values.base);
  for (const file of ['package.json', 'bin/promoguard.js', 'dist', 'node_modules'])
    if (!existsSync(path.join(base, file))) fail(`${base} has no ${file}: check it out and run npm ci there`);
  if (!['pglite', 'postgres'].includes(values.backend)) fail('--backend is pglite or postgres');
  if (!['spread', 'hot'].includes(values.load)) fail('--load is spread or hot');
  const int = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const stealMax = Number(values['steal-max']);
  if (!(stealMax >= 0 && stealMax <= 1)) fail('--steal-max is a share from 0 to 1');
  return {
    base,
    backend: values.backend,
    load: values.load,
    chunks: int('chunks', 2),
    chunkSec: int('chunk-seconds', 1),
    connections: int('connections', 1),
    stealMax,
    databaseUrl:
      values['database-url'] ??
      process.env.BENCH_DATABASE_URL ??
      'postgres://postgres@127.0.0.1:5432/postgres',
  };
}

const options = parseOptions(process.argv.slice(2));

const cleanups = [];
async function cleanupAll() {
  while (cleanups.length > 0)
    await cleanups
      .pop()()
      .catch(() => {});
}
process.on('SIGINT', () => cleanupAll().then(() => process.exit(130)));

let admin = null;
async function databaseEnv(name) {
  if (options.backend === 'pglite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), `promoguard-compare-${name}-`));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    return { env: { PROMOGUARD_DATA_DIR: dir }, vacuum: null };
  }
  if (!admin) {
    admin = new pg.Client({ connectionString: options.databaseUrl, application_name: 'promoguard-bench' });
    await admin.connect();
    cleanups.push(() => admin.end());
  }
  const db = `promoguard_compare_${name}_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(db)}`);
  cleanups.push(() => admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`));
  const url = new URL(options.databaseUrl);
  url.pathname = `/${db}`;
  const databaseUrl = url.toString();
  const vacuum = new pg.Client({ connectionString: databaseUrl, application_name: 'promoguard-bench' });
  return { env: { DATABASE_URL: databaseUrl }, vacuum };
}

/** Codes a build's chunks may take: its fastest plausible rate for every chunk, with room to spare. */
function spreadCodesNeeded() {
  const rate = options.backend === 'postgres' ? 1200 : 600;
  return rate * options.chunkSec * (options.chunks + 2);
}

async function startBuild(name, root) {
  const db = await databaseEnv(name);
  const server = await startServer(db.env, { root });
  cleanups.push(() => server.stop());
  if (db.vacuum) {
    await db.vacuum.connect();
    cleanups.push(() => db.vacuum.end());
  }
  const api = new Api(server.url, server.adminKey);
  const key = await createCheckoutKey(api);
  let codes = [];
  if (options.load === 'spread') {
    const campaigns = 100;
    const ids = await createSpread(api, {
      campaigns,
      codesPerCampaign: Math.ceil(spreadCodesNeeded() / campaigns),
    });
    const perCampaign = [];
    for (const id of ids) {
      const csv = (await api.must(200, 'GET', `/v1/campaigns/${id}/codes?format=csv`)).trim().split('\n');
      perCampaign.push(csv.slice(1).map((line) => line.split(',')[0]));
    }
    // Round-robin over the campaigns: consecutive requests hit different campaigns, as in `npm run bench`.
    for (let i = 0; perCampaign.some((list) => i < list.length); i++)
      for (const list of perCampaign) if (i < list.length) codes.push(list[i]);
  } else {
    await createHot(api, { name: HOT_NAME, code: HOT_CODE, cap: HOT_CAP });
    codes = null;
  }
  say(`${name}: ${root} (pid ${server.pid})${codes ? `, ${codes.length} codes` : ''}`);
  return { name, root, server, key, codes, next: 0, vacuum: db.vacuum };
}

let seq = 0;
const RUN_ID = randomBytes(4).toString('hex');

function makeBody(build) {
  return () => {
    const code = build.codes ? build.codes[build.next++] : HOT_CODE;
    if (code === undefined) return null;
    const n = seq++;
    return {
      idempotencyKey: `compare-${RUN_ID}-${n}`,
      body: {
        code,
        customer: { id: `cus_compare_${RUN_ID}_${n}` },
        cart: { currency: 'USD', subtotal_minor: SUBTOTAL_MINOR },
        order_id: `ord_compare_${n}`,
        context: { ip: ipFor(n), user_agent: USER_AGENT },
      },
    };
  };
}

async function chunk(build, durationSec) {
  // Let the other build's relay and detectors finish the last chunk's events before this one starts.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  // The hot row is vacuumed before each chunk, as `npm run bench` does before its hot load.
  if (options.load === 'hot' && build.vacuum) await build.vacuum.query('VACUUM codes, campaigns');
  const cpu0 = readCpuSeconds(build.server.pid);
  const host0 = hostTicks();
  const r = await httpLoad({
    url: build.server.url,
    key: build.key,
    path: '/v1/redemptions',
    connections: options.connections,
    durationSec,
    makeBody: makeBody(build),
    okStatus: 201,
    keepSamples: true,
  });
  const host1 = hostTicks();
  const cpu1 = readCpuSeconds(build.server.pid);
  if (r.exhausted) throw new Error(`${build.name}: ran out of codes; use fewer or shorter chunks`);
  const notOk = r.responses - r.ok;
  if (notOk > 0) say(`! ${build.name}: ${notOk} answers other than 201: ${JSON.stringify(r.problems)}`);
  return {
    samples: r.samplesOk,
    ok: r.ok,
    rate: r.rate,
    cpuMsPerOp: r.ok > 0 ? (1000 * (cpu1 - cpu0)) / r.ok : null,
    steal: host1.total > host0.total ? (host1.steal - host0.steal) / (host1.total - host0.total) : 0,
  };
}

function pooled(chunks) {
  const all = Float64Array.from(chunks.flatMap((c) => Array.from(c.samples))).sort();
  const ok = chunks.reduce((n, c) => n + c.ok, 0);
  const cpu = chunks.reduce((n, c) => n + (c.cpuMsPerOp ?? 0) * c.ok, 0);
  return {
    count: all.length,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    cpuMsPerOp: ok > 0 ? cpu / ok : null,
  };
}

const fmtMs = (x) => (x === null || x === undefined ? '—' : `${x.toFixed(1)} ms`);
const change = (a, b) => (a && b ? `${((100 * b) / a - 100).toFixed(1)} %` : '—');

async function main() {
  say(
    `${options.backend}, ${options.load} load: ${options.chunks} chunks of ${options.chunkSec} s per build, ${options.connections} in flight`,
  );
  const builds = [await startBuild('base', options.base), await startBuild('this', ROOT)];
  say('lead-in (not counted)');
  for (const b of builds) await chunk(b, 2);
  const pairs = [];
  for (let i = 0; i < options.chunks; i++) {
    // ABBA: neither build always runs right after the other's events.
    const order = i % 2 === 0 ? builds : [...builds].reverse();
    const pair = {};
    for (const b of order) pair[b.name] = await chunk(b, options.chunkSec);
    pairs.push(pair);
    const line = (n) =>
      `${n} p99 ${fmtMs(percentile(Float64Array.from(pair[n].samples).sort(), 99))} ${Math.round(pair[n].rate)}/s ` +
      `CPU ${pair[n].cpuMsPerOp?.toFixed(2) ?? '—'} ms stolen ${Math.round(100 * pair[n].steal)} %`;
    say(`chunk ${i + 1}/${options.chunks}: ${line('base')} | ${line('this')}`);
  }
  const quiet = pairs.filter((p) => p.base.steal <= options.stealMax && p.this.steal <= options.stealMax);
  const summary = (list) => ({
    base: pooled(list.map((p) => p.base)),
    this: pooled(list.map((p) => p.this)),
  });
  const all = summary(pairs);
  const calm = quiet.length > 0 ? summary(quiet) : null;
  const row = (label, s, n) =>
    `${label.padEnd(38)} p50 ${fmtMs(s.base.p50)} → ${fmtMs(s.this.p50)} (${change(s.base.p50, s.this.p50)})  ` +
    `p99 ${fmtMs(s.base.p99)} → ${fmtMs(s.this.p99)} (${change(s.base.p99, s.this.p99)})  ` +
    `server CPU ${s.base.cpuMsPerOp?.toFixed(2)} → ${s.this.cpuMsPerOp?.toFixed(2)} ms/op (${change(s.base.cpuMsPerOp, s.this.cpuMsPerOp)})  [${n} pairs]`;
  process.stdout.write(
    `\nPromoguard bench:compare — ${options.backend}, ${options.load} redemptions, base = ${options.base}, this = ${ROOT}\n` +
      `${row('all pairs', all, pairs.length)}\n` +
      (calm
        ? `${row(`quiet pairs (stolen <= ${Math.round(100 * options.stealMax)} % in both)`, calm, quiet.length)}\n`
        : `no quiet pair: every pair had a chunk that lost more than ${Math.round(100 * options.stealMax)} % of the host; run again later\n`),
  );
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-compare.json`);
  const strip = (c) => ({ ok: c.ok, rate: c.rate, cpuMsPerOp: c.cpuMsPerOp, steal: c.steal });
  writeFileSync(
    file,
    JSON.stringify(
      { options, all, quiet: calm, pairs: pairs.map((p) => ({ base: strip(p.base), this: strip(p.this) })) },
      null,
      2,
    ),
  );
  process.stdout.write(`results: ${path.relative(ROOT, file)}\n`);
}

try {
  await main();
} finally {
  await cleanupAll();
}
