/**
 * The limit again, measured by pgbench: a script generated from REDEEM_SQL (its $n become :pn), run
 * with the same number of clients in extended-protocol mode (one unnamed statement per call, as the
 * pg driver sends it). The arguments are the bench's makeRedeemParams + redeemArgs for a sample
 * request whose per-request values are markers; each position is then classified by what it holds:
 *
 *   a marker (ids, idempotency key, customer, order)  -> \set pN :k, a number unique per transaction
 *   text containing a marker (the identity keys)       -> built per transaction by the lookup query
 *   the code, campaign and version of a spread code    -> read per transaction by the lookup query
 *   NULL                                               -> written into the statement as NULL (pgbench
 *                                                          sends a NULL variable as '', not as NULL)
 *   anything else                                      -> a constant passed with -D
 *
 * The lookup is one SELECT ... \gset before the redeem: pgbench has no string arithmetic, so text
 * that must differ per transaction costs that one extra round trip. pgbench's per-statement latencies
 * (-r) report the redeem statement's own figure apart from it.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REDEEM_SQL, redeemArgs } from '../../dist/store/redemptions.js';
import { makeRedeemParams } from './limit.mjs';

export const PGBENCH_TABLE = 'bench_pgbench_codes';
const PGBENCH_CANDIDATES = [
  '/usr/bin/pgbench',
  '/usr/lib/postgresql/15/bin/pgbench',
  '/usr/local/bin/pgbench',
];

export function findPgbench() {
  for (const candidate of [process.env.PGBENCH, ...PGBENCH_CANDIDATES]) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return null;
}

const MARK = 'PGBMARK';
const VERSION_MARK = 987_654_321;
/**
 * A SQL string literal pgbench leaves alone: it reads ":name" as a variable even inside quotes, so a
 * colon is spliced in as its own literal (':' followed by a quote is no variable).
 */
const sqlText = (s) => `'${String(s).replace(/'/g, "''").replace(/:/g, "' || ':' || '")}'`;

/** Text form pgbench sends for a value (arrays as array literals, objects as JSON). */
function asText(value) {
  if (Array.isArray(value))
    return `{${value.map((v) => `"${String(v).replace(/(["\\])/g, '\\$1')}"`).join(',')}}`;
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Classify REDEEM_SQL's parameters for a run of `kind` ('spread' | 'hot') on `row` (the hot code's row,
 * or any spread row: spread campaigns share their terms).
 */
export function pgbenchPlan(row, hasher, kind, decision = null) {
  const params = makeRedeemParams(
    row,
    { customerId: `${MARK}CUS`, orderId: `${MARK}ORD`, idempotencyKey: `${MARK}KEY`, ip: '192.0.2.1' },
    hasher,
    decision,
  );
  // Shaped like the service's ids ('red_' + unique part): the function names the stored decision
  // 'dec_' + the id after its prefix, so a bare number here gave colliding decision ids.
  params.id = `red_${MARK}ID`;
  params.eventId = `${MARK}EVT`;
  params.personCandidate = `${MARK}PER`;
  const fromTable = {};
  if (kind === 'spread') {
    params.codeId = `${MARK}CODE`;
    params.campaignId = `${MARK}CMP`;
    params.campaignVersion = VERSION_MARK;
  }
  const args = redeemArgs(params);
  const perTx = [];
  const computed = {};
  const defines = {};
  const nulls = [];
  args.forEach((value, index) => {
    const n = index + 1;
    if (value === null || value === undefined) nulls.push(n);
    else if (value === `${MARK}CODE`) fromTable[n] = 'code_id';
    else if (value === `${MARK}CMP`) fromTable[n] = 'campaign_id';
    else if (value === VERSION_MARK) fromTable[n] = 'version';
    else if (typeof value === 'string' && /^PGBMARK[A-Z]+$/.test(value)) perTx.push(n);
    else if (asText(value).includes(MARK)) {
      computed[n] = `regexp_replace(${sqlText(asText(value))}, 'PGBMARK[A-Z]+', :k::text, 'g')`;
    } else defines[`p${n}`] = asText(value);
  });
  const nullSet = new Set(nulls);
  const statement = REDEEM_SQL.replace(/\$(\d+)/g, (_, n) => (nullSet.has(Number(n)) ? 'NULL' : `:p${n}`));
  if (/\$\d/.test(statement)) throw new Error('REDEEM_SQL still has positional parameters');
  return { kind, perTx, computed, fromTable, defines, nulls, statement };
}

/** Write the script file for a plan; spread clients own `slice` rows each of the lookup table. */
export function writeScript(dir, plan, slice) {
  const lines = ['\\set i :i + 1'];
  if (plan.kind === 'spread') {
    lines.push(`\\set n :client_id * ${slice} + :i`);
    lines.push('\\set k :base + :n');
  } else {
    lines.push('\\set k :base + :client_id * 100000000 + :i');
  }
  for (const n of plan.perTx) lines.push(`\\set p${n} :k`);
  const selected = [
    ...Object.entries(plan.fromTable).map(([n, column]) => `${column} AS p${n}`),
    ...Object.entries(plan.computed).map(([n, expr]) => `${expr} AS p${n}`),
  ];
  if (selected.length > 0) {
    const from = Object.keys(plan.fromTable).length > 0 ? ` FROM ${PGBENCH_TABLE} WHERE n = :n` : '';
    lines.push(`SELECT ${selected.join(', ')}${from} \\gset`);
  }
  lines.push(`${plan.statement};`);
  const file = path.join(dir, `redeem-${plan.kind}.sql`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, text: lines.join('\n') };
}

/** Run pgbench for `durationSec` with `clients` clients; parse what it prints. */
export function runPgbench({ pgbench, databaseUrl, script, clients, durationSec, defines }) {
  const url = new URL(databaseUrl);
  const args = [
    '-h',
    url.hostname,
    '-p',
    url.port || '5432',
    '-U',
    decodeURIComponent(url.username || 'postgres'),
    '-n',
    '-M',
    'extended',
    '-c',
    String(clients),
    '-j',
    '2',
    '-T',
    String(durationSec),
    '-r',
    '-f',
    script.file,
  ];
  for (const [name, value] of Object.entries(defines)) args.push('-D', `${name}=${value}`);
  args.push(decodeURIComponent(url.pathname.slice(1)));
  return new Promise((resolve, reject) => {
    const child = spawn(pgbench, args, {
      env: { PATH: process.env.PATH, PGPASSWORD: decodeURIComponent(url.password ?? '') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (durationSec + 60) * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(parsePgbench(stdout, stderr, code));
    });
  });
}

function parsePgbench(stdout, stderr, exitCode) {
  const num = (re) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : null;
  };
  const statements = [];
  const section = stdout.split(/statement latencies in milliseconds[^\n]*\n/)[1] ?? '';
  for (const line of section.split('\n')) {
    const m = /^\s*([\d.]+)\s+(\d+)\s+(.*)$/.exec(line);
    if (m) statements.push({ latencyMs: Number(m[1]), failures: Number(m[2]), statement: m[3].trim() });
  }
  const redeem = statements.find((s) => s.statement.includes('promoguard_redeem'));
  const lookup = statements.find(
    (s) => /^SELECT /i.test(s.statement) && !s.statement.includes('promoguard_redeem'),
  );
  return {
    exitCode,
    tps: num(/tps = ([\d.]+) \(without initial connection time\)/),
    transactions: num(/number of transactions actually processed: (\d+)/),
    failed: num(/number of failed transactions: (\d+)/) ?? 0,
    latencyAvgMs: num(/latency average = ([\d.]+) ms/),
    redeemLatencyMs: redeem?.latencyMs ?? null,
    lookupLatencyMs: lookup?.latencyMs ?? null,
    abortedClients: (stderr.match(/aborted in command/g) ?? []).length,
    errors: stderr
      .split('\n')
      .filter((l) => /error/i.test(l))
      .slice(0, 5),
  };
}
