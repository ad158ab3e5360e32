#!/usr/bin/env node
/**
 * How long `promoguard codes generate` and `promoguard codes export` take for N codes, run as a person
 * runs them (the built CLI in a child process) against a fresh database: a PostgreSQL database of its
 * own (dropped afterwards) or a fresh PGlite data folder (removed afterwards). Prints the wall time of
 * each command, the export's size, and checks that the file holds every code once.
 *
 *   npm run build && node bench/codes.mjs [--count 1000000] [--backend postgres|pglite]
 *     [--url postgres://postgres@127.0.0.1:5432/postgres] [--prefix BENCH] [--keep]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const COUNT = Number(arg('count', 1_000_000));
const BACKEND = arg('backend', 'postgres');
const ADMIN_URL = arg('url', 'postgres://postgres@127.0.0.1:5432/postgres');
const PREFIX = arg('prefix', 'BENCH');
const KEEP = process.argv.includes('--keep');
if (!['postgres', 'pglite'].includes(BACKEND)) throw new Error('--backend postgres|pglite');
if (!Number.isInteger(COUNT) || COUNT < 1) throw new Error('--count: a whole number from 1');

const say = (text) => process.stderr.write(`${text}\n`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

async function withAdmin(fn) {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

const work = await mkdtemp(path.join(tmpdir(), 'promoguard-codes-bench-'));
const env = { LOG_LEVEL: 'silent', RISK_DEFAULT_PACK: 'off', APPROVALS: 'off' };
let database;
if (BACKEND === 'postgres') {
  database = `promoguard_codes_bench_${randomBytes(4).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${database}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  env.DATABASE_URL = url.toString();
} else {
  env.PROMOGUARD_DATA_DIR = path.join(work, 'data');
}

/** Run the built CLI; its progress output is dropped (stderr is not a terminal here). */
function cli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/promoguard.js'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(stderr)
        : reject(new Error(`promoguard ${args[0]} ${args[1]} exited ${code}: ${stderr}`)),
    );
  });
}

async function countLines(file) {
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  }
  return lines;
}

try {
  const app = await createApp({ config: loadConfig(env), logger: { error: () => {} }, relay: false });
  let campaignId;
  try {
    const made = await app.campaigns.create(
      {
        name: 'codes bench',
        currency: 'USD',
        discount: { type: 'fixed_amount', amountMinor: 500 },
        status: 'active',
        startsAt: new Date('2020-01-01T00:00:00Z'),
      },
      'bench',
    );
    campaignId = made.campaign.id;
  } finally {
    await app.close();
  }

  say(`${BACKEND}: generating ${COUNT.toLocaleString('en')} codes …`);
  let t = performance.now();
  await cli(['codes', 'generate', campaignId, '--count', String(COUNT), '--prefix', PREFIX]);
  const generateMs = performance.now() - t;

  const file = path.join(work, 'codes.csv');
  say(`${BACKEND}: exporting …`);
  t = performance.now();
  await cli(['codes', 'export', campaignId, '--out', file]);
  const exportMs = performance.now() - t;
  const size = (await stat(file)).size;
  const lines = await countLines(file);
  if (lines !== COUNT + 1) throw new Error(`the export has ${lines} lines, expected ${COUNT + 1}`);

  process.stdout.write(
    `codes bench (${BACKEND}, ${COUNT.toLocaleString('en')} codes, CLI wall time incl. start-up)\n` +
      `  generate  ${seconds(generateMs)}  (${Math.round(COUNT / (generateMs / 1000)).toLocaleString('en')} codes/s)\n` +
      `  export    ${seconds(exportMs)}  (${(size / 1e6).toFixed(1)} MB, ${lines - 1} rows)\n`,
  );
} finally {
  if (!KEEP) {
    await rm(work, { recursive: true, force: true });
    if (database) await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  } else {
    say(`kept ${database ?? work}`);
  }
}
