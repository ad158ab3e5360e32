#!/usr/bin/env node
/**
 * How long a reconciliation takes on a large PostgreSQL database. Seeds a fresh database with a
 * consistent dataset in set-based SQL (campaigns with a public code each, redemptions — every tenth
 * rolled back — with their ledger entries, counters, persons and published events; points accounts
 * with three movements each and their events), then runs one reconciliation through the service and
 * prints the time per phase and the verdict (it must be ok: the data is consistent). The database is
 * dropped afterwards unless --keep-database is given.
 *
 *   npm run build && node bench/reconcile.mjs [--url postgres://postgres@127.0.0.1:5432/postgres]
 *     [--campaigns 1000] [--redemptions 1000000] [--customers 200000] [--points-accounts 100000]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ADMIN_URL = arg('url', 'postgres://postgres@127.0.0.1:5432/postgres');
const CAMPAIGNS = Number(arg('campaigns', 1_000));
const REDEMPTIONS = Number(arg('redemptions', 1_000_000));
const CUSTOMERS = Number(arg('customers', 200_000));
const ACCOUNTS = Number(arg('points-accounts', 100_000));
const KEEP = process.argv.includes('--keep-database');

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

const database = `promoguard_reconcile_bench_${randomBytes(4).toString('hex')}`;
await withAdmin((admin) => admin.query(`CREATE DATABASE ${database}`));
const url = new URL(ADMIN_URL);
url.pathname = `/${database}`;

const config = loadConfig({ DATABASE_URL: url.toString(), LOG_LEVEL: 'silent', RISK_DEFAULT_PACK: 'off' });
const app = await createApp({
  config,
  logger: { error: (o, m) => say(`${m} ${JSON.stringify(o)}`) },
  relay: false,
});
const client = new pg.Client({ connectionString: url.toString() });
await client.connect();

const id = (prefix, expr) => `'${prefix}_' || lpad((${expr})::text, 26, '0')`;
const seedSteps = [
  [
    'campaigns and codes',
    `INSERT INTO campaigns (id, name, status, currency, discount_type, amount_minor, starts_at, eligibility, updated_at)
     SELECT ${id('cmp', 'i')}, 'bench', 'active', 'USD', 'fixed_amount', 500, now(), '{}', now()
       FROM generate_series(1, ${CAMPAIGNS}) i;
     INSERT INTO codes (id, campaign_id, code, normalized, kind)
     SELECT ${id('code', 'i')}, ${id('cmp', 'i')}, 'BENCH' || i, 'BENCH' || i, 'public'
       FROM generate_series(1, ${CAMPAIGNS}) i;`,
  ],
  [
    'redemptions',
    `INSERT INTO redemptions (id, idempotency_key, request_fingerprint, campaign_id, code_id, customer_id,
                              currency, subtotal_minor, discount_minor, status, person_id)
     SELECT ${id('red', 'i')}, 'k' || i, 'f', ${id('cmp', `i % ${CAMPAIGNS} + 1`)}, ${id('code', `i % ${CAMPAIGNS} + 1`)},
            'cus_' || (i % ${CUSTOMERS}), 'USD', 10000, 500 + i % 7,
            CASE WHEN i % 10 = 0 THEN 'rolled_back' ELSE 'redeemed' END, 'per_' || (i % ${CUSTOMERS})
       FROM generate_series(1, ${REDEMPTIONS}) i;
     INSERT INTO identity_nodes (key, person_id)
     SELECT 'customer:cus_' || j, 'per_' || j FROM generate_series(0, ${CUSTOMERS - 1}) j;`,
  ],
  [
    'ledger',
    `INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type)
     SELECT r.id, r.campaign_id, a.account, r.discount_minor * a.sign, 'USD', 'redemption'
       FROM redemptions r CROSS JOIN (VALUES ('promo_expense', 1), ('campaign_budget', -1)) a (account, sign);
     INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type)
     SELECT r.id, r.campaign_id, a.account, -r.discount_minor * a.sign, 'USD', 'reversal'
       FROM redemptions r CROSS JOIN (VALUES ('promo_expense', 1), ('campaign_budget', -1)) a (account, sign)
      WHERE r.status = 'rolled_back';`,
  ],
  [
    'counters',
    `UPDATE campaigns c SET redemptions_used = s.n, spent_minor = s.spent
       FROM (SELECT campaign_id, count(*) AS n, sum(discount_minor) AS spent FROM redemptions
              WHERE status = 'redeemed' GROUP BY campaign_id) s WHERE s.campaign_id = c.id;
     UPDATE codes k SET uses = s.n
       FROM (SELECT code_id, count(*) AS n FROM redemptions WHERE status = 'redeemed' GROUP BY code_id) s
      WHERE s.code_id = k.id;
     INSERT INTO customer_usage (campaign_id, customer_id, uses)
     SELECT campaign_id, customer_id, count(*) FILTER (WHERE status = 'redeemed') FROM redemptions GROUP BY 1, 2;
     INSERT INTO person_usage (campaign_id, person_id, uses)
     SELECT campaign_id, person_id, count(*) FILTER (WHERE status = 'redeemed') FROM redemptions GROUP BY 1, 2;`,
  ],
  [
    'points',
    `INSERT INTO points_accounts (customer_id, balance, updated_at)
     SELECT 'pts_' || lpad(j::text, 9, '0'), 120, now() FROM generate_series(1, ${ACCOUNTS}) j;
     INSERT INTO points_movements (customer_id, kind, points, balance_after, idempotency_key)
     SELECT 'pts_' || lpad(j::text, 9, '0'), m.kind, m.points, m.after, m.kind || m.n
       FROM generate_series(1, ${ACCOUNTS}) j
      CROSS JOIN (VALUES (1, 'credit', 100, 100), (2, 'credit', 50, 150), (3, 'debit', -30, 120)) m (n, kind, points, after)
      ORDER BY j, m.n;`,
  ],
  [
    'events',
    `INSERT INTO outbox (id, type, aggregate_id, payload, published_at)
     SELECT 'evt_c' || id, 'redemption.created', id, '{}', now() FROM redemptions;
     INSERT INTO outbox (id, type, aggregate_id, payload, published_at)
     SELECT 'evt_r' || id, 'redemption.rolled_back', id, '{}', now() FROM redemptions WHERE status = 'rolled_back';
     INSERT INTO outbox (id, type, aggregate_id, payload, published_at)
     SELECT 'evt_m' || id, CASE kind WHEN 'credit' THEN 'points.credited' ELSE 'points.debited' END, customer_id,
            jsonb_build_object('movement', jsonb_build_object('id', id)), now()
       FROM points_movements;
     ANALYZE;`,
  ],
];

try {
  say(
    `seeding ${database}: ${CAMPAIGNS} campaigns, ${REDEMPTIONS} redemptions, ${CUSTOMERS} customers, ${ACCOUNTS} points accounts`,
  );
  for (const [label, text] of seedSteps) {
    const t0 = performance.now();
    await client.query(text);
    say(`  ${label}: ${seconds(performance.now() - t0)}`);
  }
  // Each progress report comes after a batch: a phase ends at its last report.
  const endOf = new Map();
  const t0 = performance.now();
  const result = await app.reconciliation.run('bench', (p) => endOf.set(p.phase, performance.now()));
  const total = performance.now() - t0;
  const phases = [];
  let previous = t0;
  for (const [name, end] of endOf) {
    phases.push([name, end - previous]);
    previous = end;
  }
  const report = result.reconciliation;
  const { rows } = await client.query(
    `SELECT (SELECT count(*) FROM ledger_entries) AS ledger, (SELECT count(*) FROM outbox) AS events,
            (SELECT count(*) FROM points_movements) AS movements`,
  );
  process.stdout.write(
    `reconciled ${REDEMPTIONS} redemptions, ${rows[0].ledger} ledger entries, ${rows[0].movements} points movements, ` +
      `${rows[0].events} events in ${seconds(total)}: ${report.status}, ${report.summary?.mismatched_rows} mismatched rows\n`,
  );
  for (const [name, ms] of phases) process.stdout.write(`  ${name.padEnd(10)} ${seconds(ms)}\n`);
  if (report.status !== 'ok') process.exitCode = 1;
} finally {
  await client.end();
  await app.close();
  if (!KEEP) await withAdmin((admin) => admin.query(`DROP DATABASE ${database} WITH (FORCE)`));
}
