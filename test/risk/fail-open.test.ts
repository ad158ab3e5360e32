/**
 * Failing open when the feature counters cannot be read: the app's Redis is a closed port. Caps never
 * depend on Redis; a rule that reads a counter feature sends the attempt to review (the discount is
 * granted, a person looks at it) and the engine counts it; rules that read no counter feature still act.
 * On every database backend; the apps start together, so their 5 s wait for Redis overlaps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES } from '../../src/domain/risk.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import {
  createRule,
  decisionOf,
  expectBlocked,
  expectRedeemed,
  fraudKey,
  redeem,
  ruleIn,
  statsOf,
} from './helpers.js';

const NOW = '2026-06-01T12:00:00Z';

interface DownApp {
  t: TestApp;
  clock: TestClock;
  fraud: string;
}

let starting: Promise<Map<string, DownApp>> | undefined;
/** Every backend's app, started together on first use (closed by the file's afterAll). */
function downApps(): Promise<Map<string, DownApp>> {
  starting ??= Promise.allSettled(
    backends.map(async (backend) => {
      const clock = new TestClock(new Date(NOW));
      // Nothing listens on port 1: the app waits 5 s for Redis, then serves with the rate limits and the
      // counter features failing open.
      const t = await startTestApp(backend, {
        clock,
        env: {
          REDIS_URL: 'redis://127.0.0.1:1',
          REDIS_KEY_PREFIX: unique('pg:test:down:'),
          RISK_DEFAULT_PACK: 'off',
        },
      });
      return [backend.name, { t, clock, fraud: await fraudKey(t) }] as const;
    }),
  ).then(async (results) => {
    const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      for (const [, app] of started) await app.t.close();
      throw failed.reason;
    }
    return new Map(started);
  });
  return starting;
}

afterAll(async () => {
  const apps = await starting?.catch(() => undefined);
  for (const app of apps?.values() ?? []) await app.t.close();
});

describe.each(backends.map((b) => [b.name, b] as const))('counter store unreachable on %s', (name) => {
  let clock: TestClock;
  let t: TestApp;
  let fraud: string;

  beforeAll(async () => {
    const app = (await downApps()).get(name);
    if (!app) throw new Error(`no app for ${name}`);
    ({ t, clock, fraud } = app);
  }, 30_000);

  it('an enforced rule reading a counter feature sends the attempt to review, and it is counted', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const farm = await createRule(t, fraud, {
      expression: 'features.device_customers_24h >= 5',
      action: 'block',
      campaign_id: campaignId,
    });
    const shadow = await createRule(t, fraud, {
      expression: 'features.ip_failed_attempts_1h >= 1',
      action: 'block',
      mode: 'shadow',
      campaign_id: campaignId,
    });
    const before = await statsOf(t, fraud);

    const r = await redeem(t, code, unique('CUS_DOWN_'), { context: { device_id: unique('dev-down-') } });
    const held = expectRedeemed(r, 'review');
    expect(held.review_status).toBe('pending');
    expect(held.decision.because).toEqual([farm]);
    expect(ruleIn(held.decision, farm)).toMatchObject({
      result: 'unavailable',
      detail: 'device_customers_24h',
      mode: 'enforce',
    });
    // The shadow rule is shown as unavailable and does not act.
    expect(ruleIn(held.decision, shadow)).toMatchObject({ result: 'unavailable', mode: 'shadow' });
    expect([...held.decision.unavailable_features].sort()).toEqual(
      FEATURES.filter((f) => f.source === 'counter')
        .map((f) => f.name)
        .sort(),
    );
    // Features from the database are still there.
    expect(held.decision.features).toMatchObject({ linked_accounts: 1, customer_redemptions: 0 });
    expect(held.decision.features).not.toHaveProperty('device_customers_24h');

    const after = await statsOf(t, fraud);
    expect(after.feature_errors).toBe(before.feature_errors + 1);
    expect(after.fail_open_reviews).toBe(before.fail_open_reviews + 1);
    expect(after.record_errors).toBeGreaterThan(before.record_errors);
    expect(after.pending_reviews).toBe(before.pending_reviews + 1);
  });

  it('a rule that reads no counter feature still acts: a block stays a block', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const rule = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 40000',
      action: 'block',
      campaign_id: campaignId,
    });
    const decision = expectBlocked(await redeem(t, code, unique('CUS_DOWN_'), { subtotal: 45_000 }));
    expect(decision.because).toEqual([rule]);
    expectRedeemed(await redeem(t, code, unique('CUS_DOWN_'), { subtotal: 10_000 }));
  });

  it('a rule reading a counter feature by index also fails open to review (not to allow)', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const rule = await createRule(t, fraud, {
      expression: 'features["device_customers_24h"] >= 5',
      action: 'block',
      campaign_id: campaignId,
    });
    const r = await redeem(t, code, unique('CUS_DOWN_'), { context: { device_id: unique('dev-down-') } });
    expect(r.statusCode, r.body).toBe(201);
    const decision = decisionOf(r);
    expect(ruleIn(decision, rule)?.result, JSON.stringify(decision.rules)).toBe('unavailable');
    expect(decision.action).toBe('review');
  });

  it('a backtest counts the decisions a rule could not be evaluated on as unavailable', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const start = clock.now();
    for (let i = 0; i < 3; i++) expectRedeemed(await redeem(t, code, unique('CUS_DOWN_BT_')));
    const body = {
      from: new Date(start.getTime() - 1_000).toISOString(),
      to: new Date(start.getTime() + 1_000).toISOString(),
      campaign_id: campaignId,
    };
    const counted = await t.call('POST', '/v1/rules/backtest', {
      key: fraud,
      body: { expression: 'features.campaign_new_accounts_1h >= 0', ...body },
    });
    expect(counted.json()).toMatchObject({ evaluated: 3, hits: 0, unavailable: 3, errors: 0 });
    const fromDatabase = await t.call('POST', '/v1/rules/backtest', {
      key: fraud,
      body: { expression: 'features.linked_accounts >= 1', ...body },
    });
    expect(fromDatabase.json()).toMatchObject({ evaluated: 3, hits: 3, unavailable: 0 });
  });
});
