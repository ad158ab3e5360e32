#!/usr/bin/env node
/**
 * What the risk decision adds to a redemption, on the embedded store (PGlite, in-memory counters).
 *
 * 1. The decision alone: RiskEngine.decide() with the default rule pack, over varied requests (many
 *    devices, addresses, customers; some shared devices so rules fire), each followed by its record():
 *    p50 / p99 / max per decision.
 * 2. Side by side, in one run: in-process redemptions through RedemptionService with the default pack
 *    and with no rules (two apps, alternating batches so machine noise hits both alike): p50 / p99.
 *
 *   npm run build && node bench/risk-decision.mjs [--decisions 20000] [--redemptions 1500]
 * Writes bench/results/<time>-risk.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config.js';
import { normalizeCode } from '../dist/domain/codes.js';
import { resolveContext } from '../dist/security/request-context.js';
import { loadRedemptionContext } from '../dist/store/redemption-context.js';
import { LatencyRecorder, round } from './lib/stats.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const DECISIONS = arg('decisions', 20_000);
const REDEMPTIONS = arg('redemptions', 1_500);

async function openApp(pack) {
  const dir = mkdtempSync(join(tmpdir(), 'pg-risk-bench-'));
  const app = await createApp({
    config: loadConfig({
      PROMOGUARD_DATA_DIR: dir,
      LOG_LEVEL: 'silent',
      RISK_DEFAULT_PACK: pack ? 'on' : 'off',
      RATE_LIMIT_PER_MINUTE: '100000',
      LOCKOUT_AFTER_FAILURES: '10000',
    }),
    logger: { error: () => {} },
    relay: false,
  });
  const campaign = await app.campaigns.create(
    {
      name: 'risk bench',
      currency: 'EUR',
      discount: { type: 'fixed_amount', amountMinor: 500 },
      startsAt: new Date(Date.now() - 60_000),
      status: 'active',
    },
    'bench',
  );
  await app.codes.createCode(campaign.id, { code: 'RISKBENCH' }, 'bench');
  return { app, dir, campaignId: campaign.id };
}

function request(i) {
  // One device in 50 is shared by several customers, so the device rules fire now and then.
  const device = i % 50 === 0 ? 'dev-shared' : `dev-${i % 5000}`;
  return {
    code: 'RISKBENCH',
    customer: { id: `cus-${i}` },
    cart: { currency: 'EUR', subtotalMinor: 5_000 + (i % 7) * 1_000, shippingMinor: 0 },
    context: {
      ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      deviceId: device,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131 Safari/537.36',
      email: `shopper${i}@example.com`,
      paymentFingerprint: `card-${i % 3000}`,
      accountCreatedAt: new Date(Date.now() - (i % 100) * 3_600_000),
    },
  };
}

async function decisionsAlone(app) {
  const normalized = normalizeCode('RISKBENCH');
  const { context } = await loadRedemptionContext(app.db, {
    normalized,
    customerId: 'cus-0',
    idempotencyKey: null,
    identityKeys: ['customer:cus-0'],
    currency: 'EUR',
    now: new Date(),
  });
  const latency = new LatencyRecorder();
  const actions = { allow: 0, review: 0, challenge: 0, block: 0 };
  for (let i = 0; i < DECISIONS; i++) {
    const req = request(i);
    const resolved = resolveContext(app.hasher, req.context);
    const now = new Date();
    const t0 = performance.now();
    const decision = await app.risk.decide({
      operation: 'redemption',
      channel: 'checkout',
      customer: req.customer,
      cart: req.cart,
      context: resolved,
      campaign: context.campaign,
      code: context.code,
      discountMinor: 500,
      facts: { linkedAccounts: 1 + (i % 5), customerRedemptions: i % 10, meanSubtotalMinor: 6_000 },
      allowListed: false,
      stepUp: null,
      now,
    });
    app.risk.record({
      customerId: req.customer.id,
      context: resolved,
      campaignId: context.campaign.id,
      codeId: context.code.id,
      redemptionId: `red-${i}`,
      failed: false,
      now,
    });
    latency.record(performance.now() - t0);
    actions[decision.action]++;
  }
  return { ...latency.summary(), actions };
}

async function redemptions(apps) {
  const recorders = apps.map(() => new LatencyRecorder());
  const outcomes = apps.map(() => ({}));
  const BATCH = 50;
  for (let start = 0; start < REDEMPTIONS; start += BATCH) {
    for (const [k, { app }] of apps.entries()) {
      for (let i = start; i < Math.min(REDEMPTIONS, start + BATCH); i++) {
        const req = request(100_000 + i);
        const t0 = performance.now();
        const result = await app.redemptions.redeem(req, `bench-${i}`);
        recorders[k].record(performance.now() - t0);
        const key = result.ok ? (result.redemption.reviewStatus ?? 'redeemed') : result.reason;
        outcomes[k][key] = (outcomes[k][key] ?? 0) + 1;
      }
    }
  }
  return apps.map((a, k) => ({ pack: a.pack, ...recorders[k].summary(), outcomes: outcomes[k] }));
}

const withPack = { ...(await openApp(true)), pack: 'default' };
const withoutPack = { ...(await openApp(false)), pack: 'none' };
try {
  process.stderr.write(`risk decision alone: ${DECISIONS} decisions with the default pack…\n`);
  const alone = await decisionsAlone(withPack.app);
  process.stderr.write(`redemptions: ${REDEMPTIONS} each with the default pack and with no rules…\n`);
  const [on, off] = await redemptions([withPack, withoutPack]);
  const result = {
    at: new Date().toISOString(),
    node: process.version,
    decision: alone,
    redemption: { default_pack: on, no_rules: off },
    added: { p50: round(on.p50 - off.p50), p99: round(on.p99 - off.p99) },
  };
  const line = (label, s) =>
    `${label.padEnd(34)} p50 ${s.p50.toFixed(3)} ms   p99 ${s.p99.toFixed(3)} ms   max ${s.max.toFixed(3)} ms`;
  console.log(line('decision (default pack), alone', alone));
  console.log(`  actions: ${JSON.stringify(alone.actions)}`);
  console.log(line('redemption, default pack', on));
  console.log(line('redemption, no rules', off));
  console.log(
    `added by the decision (difference)  p50 ${result.added.p50} ms   p99 ${result.added.p99} ms   (target: p99 decision < 2 ms)`,
  );
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${result.at.replace(/[:.]/g, '-')}-risk.json`;
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written ${file}`);
} finally {
  for (const a of [withPack, withoutPack]) {
    await a.app.close();
    rmSync(a.dir, { recursive: true, force: true });
  }
}
