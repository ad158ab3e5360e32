// Detection latency (M8) of a leak spike on the embedded default (PGlite, in-process bus): N campaigns
// each redeem at a steady rate until their baselines are learned, then one after another takes a burst
// while the others keep their pace. Each campaign-scoped redemption_spike alert reports the time from
// its triggering redemption's created_at (taken just before that transaction, so the commit is inside)
// to the alert's commit. Prints p50/p95/p99 and max, how many bursts were detected, and the relay's
// share: from a redemption's created_at to its event reaching the bus (every redemption).
//
//   node scripts/build.mjs --if-stale && node bench/detection-latency.mjs [campaigns=100] [burst=20]
// Detection runs with 2-second intervals and a 10-interval warm-up so the baseline takes 20 s, not 30
// minutes; latency does not depend on the interval length, since each key is checked after each event.
// DATABASE_URL for PostgreSQL, else PGlite in a temp folder.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config.js';
import { percentile, round } from './lib/stats.mjs';

const campaigns = Number(process.argv[2] ?? 100);
const burst = Number(process.argv[3] ?? 20);
const INTERVAL_S = 2;
const WARMUP = 10;
const dataDir = process.env.DATABASE_URL ? null : mkdtempSync(join(tmpdir(), 'promoguard-detect-bench-'));

const config = loadConfig({
  LOG_LEVEL: 'silent',
  APPROVALS: 'off',
  RATE_LIMIT_PER_MINUTE: '100000',
  RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '1000000',
  LOCKOUT_AFTER_FAILURES: '10000',
  LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '1000000',
  DETECTION_INTERVAL_SECONDS: String(INTERVAL_S),
  DETECTION_WARMUP_INTERVALS: String(WARMUP),
  ...(process.env.DATABASE_URL
    ? { DATABASE_URL: process.env.DATABASE_URL }
    : { PROMOGUARD_DATA_DIR: dataDir }),
});
const app = await createApp({ config, logger: { error: (o, m) => console.error(m, o) } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ids = [];
const codes = [];
for (let i = 0; i < campaigns; i++) {
  const { campaign } = await app.campaigns.create(
    {
      name: `Detect ${i}`,
      currency: 'USD',
      discount: { type: 'fixed_amount', amountMinor: 100 },
      status: 'active',
      startsAt: new Date('2020-01-01T00:00:00Z'),
    },
    'bench',
  );
  ids.push(campaign.id);
  const code = `DET${i}X${randomBytes(3).toString('hex')}`.toUpperCase();
  await app.codes.createCode(campaign.id, { code }, 'bench');
  codes.push(code);
}

const latencies = [];
const detected = new Set();
app.detection.onRaised((alert, seconds) => {
  if (alert.kind === 'redemption_spike' && alert.scope.type === 'campaign' && seconds !== null) {
    latencies.push(seconds * 1000);
    detected.add(alert.scope.id);
  }
});

// The relay's part: from a redemption's created_at to its event reaching the bus's subscribers.
const delivery = [];
app.bus.subscribe((event) => {
  if (event.type === 'redemption.created') delivery.push(Date.now() - event.createdAt.getTime());
});

let failures = 0;
const redeem = (i) =>
  app.redemptions
    .redeem(
      {
        code: codes[i],
        customer: { id: `cus_${randomBytes(6).toString('hex')}` },
        cart: { currency: 'USD', subtotalMinor: 5000, shippingMinor: 0 },
      },
      `idem-${randomBytes(8).toString('hex')}`,
    )
    .then(
      (r) => {
        if (!r.ok) failures++;
      },
      () => failures++,
    );

// Baseline: about one redemption per campaign per interval, at random instants.
let steady = true;
const bursting = new Set();
const baseline = (async () => {
  const pending = new Set();
  while (steady) {
    const started = Date.now();
    for (let i = 0; i < campaigns; i++) {
      if (bursting.has(i)) continue;
      const p = sleep(Math.random() * INTERVAL_S * 1000).then(() => redeem(i));
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await sleep(Math.max(0, INTERVAL_S * 1000 - (Date.now() - started)));
  }
  await Promise.all(pending);
})();

const warmupMs = (WARMUP + 2) * INTERVAL_S * 1000;
console.log(`baseline: ${campaigns} campaigns at ~1 redemption per ${INTERVAL_S} s, ${warmupMs / 1000} s`);
await sleep(warmupMs);

console.log(`bursts: ${burst} redemptions each, one campaign every 400 ms`);
for (let i = 0; i < campaigns; i++) {
  bursting.add(i);
  const work = [];
  for (let c = 0; c < 4; c++) {
    work.push(
      (async () => {
        for (let n = c; n < burst; n += 4) await redeem(i);
      })(),
    );
  }
  await Promise.all(work);
  if ((i + 1) % 10 === 0) console.log(`  ${i + 1} bursts, ${detected.size} detected`);
  await sleep(400);
}
await sleep(2000);
steady = false;
await baseline;

const sorted = Float64Array.from(latencies).sort();
const delivered = Float64Array.from(delivery).sort();
console.log(
  JSON.stringify(
    {
      campaigns,
      burst,
      detected: detected.size,
      alerts: latencies.length,
      failed_redemptions: failures,
      latency_ms: sorted.length
        ? {
            p50: round(percentile(sorted, 50)),
            p95: round(percentile(sorted, 95)),
            p99: round(percentile(sorted, 99)),
            max: round(sorted[sorted.length - 1]),
          }
        : null,
      event_delivery_ms: delivered.length
        ? {
            p50: round(percentile(delivered, 50)),
            p95: round(percentile(delivered, 95)),
            p99: round(percentile(delivered, 99)),
          }
        : null,
    },
    null,
    2,
  ),
);
await app.close();
if (dataDir) rmSync(dataDir, { recursive: true, force: true });
