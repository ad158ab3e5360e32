/**
 * The attempt counters move with what the service answers: M1 redemptions by campaign and outcome,
 * validations, M3 durations, discount granted, M4 rollbacks and review rejections, M6 account age,
 * M2 decisions, rule hits and labels, attempt-guard refusals and locks; and campaign labels stay
 * bounded by METRICS_CAMPAIGN_LABEL_LIMIT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics/catalogue.js';
import { createRule, expectRedeemed, fraudKey, redeem } from '../risk/helpers.js';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { samples, total } from '../support/metrics.js';

describe.each(backends.map((b) => [b.name, b] as const))('attempt metrics on %s', (_name, backend) => {
  let t: TestApp;
  let fraud: string;
  beforeAll(async () => {
    t = await startTestApp(backend, {
      env: {
        METRICS_CAMPAIGN_LABEL_LIMIT: '3',
        LOCKOUT_AFTER_FAILURES: '3',
        METRICS_DATABASE_READING_MS: '0',
        METRICS_TOP_N_READING_MS: '0',
      },
    });
    fraud = await fraudKey(t);
  });
  afterAll(async () => t?.close());

  const scrape = async () => {
    const res = await t.call('GET', '/metrics', { key: null });
    expect(res.statusCode, res.body).toBe(200);
    return res.body;
  };
  const post = (url: string, body: unknown, key = 'idem') =>
    t.call('POST', url, { body, headers: { 'idempotency-key': `${key}-${unique('K')}` } });

  it('counts redemptions by campaign and outcome, the discount granted, durations and account age', async () => {
    const { campaignId, code } = await campaignWithCode(t, { redemption_cap: 1 });
    const created = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const body = checkoutBody(code, {
      customer: { id: unique('CUS_') },
      context: { account_created_at: created },
    });
    const first = await t.call('POST', '/v1/redemptions', { body, headers: { 'idempotency-key': 'm-1' } });
    expect(first.statusCode, first.body).toBe(201);
    const again = await t.call('POST', '/v1/redemptions', { body, headers: { 'idempotency-key': 'm-1' } });
    expect(again.statusCode).toBe(201);
    const refused = await post('/v1/redemptions', checkoutBody(code, { customer: { id: unique('CUS_') } }));
    expect(refused.json()).toMatchObject({ reason: 'campaign_cap_reached' });
    await t.call('POST', '/v1/validations', { body: checkoutBody(code) });

    const text = await scrape();
    const c = { campaign_id: campaignId };
    expect(total(text, 'promoguard_redemptions_total', { ...c, outcome: 'redeemed' })).toBe(1);
    expect(total(text, 'promoguard_redemptions_total', { ...c, outcome: 'replayed' })).toBe(1);
    expect(
      total(text, 'promoguard_redemptions_total', {
        ...c,
        outcome: 'refused',
        reason: 'campaign_cap_reached',
      }),
    ).toBe(1);
    expect(total(text, 'promoguard_validations_total', { ...c, outcome: 'invalid' })).toBe(1);
    expect(total(text, 'promoguard_discount_granted_minor_total', { ...c, currency: 'USD' })).toBe(500);
    expect(total(text, 'promoguard_redemptions_by_account_age_total', { ...c, account_age: 'lt_24h' })).toBe(
      1,
    );
    expect(total(text, 'promoguard_redemption_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(total(text, 'promoguard_validation_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(
      total(text, 'promoguard_risk_decisions_total', { operation: 'redemption', action: 'allow' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('counts a rollback once with the discount it returned', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const r = await post('/v1/redemptions', checkoutBody(code, { customer: { id: unique('CUS_') } }));
    const id = r.json().id as string;
    for (let i = 0; i < 2; i++) {
      const back = await t.call('POST', `/v1/redemptions/${id}/rollback`, { body: { reason: 'cancelled' } });
      expect(back.statusCode, back.body).toBe(200);
    }
    const text = await scrape();
    const c = { campaign_id: campaignId };
    expect(total(text, 'promoguard_rollbacks_total', { ...c, source: 'merchant' })).toBe(1);
    expect(total(text, 'promoguard_rolled_back_discount_minor_total', { ...c, currency: 'USD' })).toBe(500);
  });

  it('counts a review hold, the rule that fired, and a rejection with its discount and label', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const rule = await createRule(t, fraud, {
      expression: 'true',
      action: 'review',
      campaign_id: campaignId,
    });
    const r = expectRedeemed(await redeem(t, code, unique('CUS_HELD_')), 'review');
    const rejected = await t.call('POST', `/v1/reviews/${r.id}/reject`, { key: fraud, body: {} });
    expect(rejected.statusCode, rejected.body).toBe(200);
    const text = await scrape();
    const c = { campaign_id: campaignId };
    expect(
      total(text, 'promoguard_rule_hits_total', { rule_id: rule, mode: 'enforce', action: 'review' }),
    ).toBe(1);
    expect(
      total(text, 'promoguard_detection_latency_seconds_count', { source: 'review_hold' }),
    ).toBeGreaterThanOrEqual(1);
    expect(total(text, 'promoguard_review_rejected_discount_minor_total', { ...c, currency: 'USD' })).toBe(
      500,
    );
    expect(total(text, 'promoguard_rollbacks_total', { ...c, source: 'review' })).toBe(1);
    expect(
      total(text, 'promoguard_labels_total', { label: 'abuse', source: 'review' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('counts the attempt guard locking a guesser and refusing the next attempt', async () => {
    const customer = unique('CUS_GUESS_');
    const before = await scrape();
    for (let i = 0; i < 4; i++) {
      await post('/v1/redemptions', checkoutBody(unique('NOPE'), { customer: { id: customer } }));
    }
    const text = await scrape();
    const grew = (name: string, labels: Record<string, string>) =>
      total(text, name, labels) - total(before, name, labels);
    expect(grew('promoguard_attempt_guard_locks_total', { key_kind: 'customer' })).toBeGreaterThanOrEqual(1);
    expect(
      grew('promoguard_attempt_guard_refusals_total', { key_kind: 'customer', reason: 'locked' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      grew('promoguard_redemptions_total', { outcome: 'limited', reason: 'locked' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('gives campaigns past the label limit the shared label "other"', async () => {
    for (let i = 0; i < 4; i++) {
      const { code } = await campaignWithCode(t);
      await post('/v1/redemptions', checkoutBody(code, { customer: { id: unique('CUS_') } }));
    }
    const text = await scrape();
    const labels = new Set(
      text
        .split('\n')
        .filter((l) => l.startsWith('promoguard_redemptions_total{'))
        .map((l) => /campaign_id="([^"]*)"/.exec(l)?.[1]),
    );
    expect(labels.has('other')).toBe(true);
    expect([...labels].filter((l) => l?.startsWith('cmp_')).length).toBeLessThanOrEqual(3);
  });

  it('after a mixed load every seed metric M1–M10 has a series', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const paid = await post(
      '/v1/redemptions',
      checkoutBody(code, {
        customer: { id: unique('CUS_') },
        context: { payment_fingerprint: 'tok_card_9' },
      }),
    );
    expect(paid.statusCode, paid.body).toBe(201);
    const outcome = await t.call('POST', `/v1/redemptions/${paid.json().id}/outcome`, {
      key: fraud,
      body: { outcome: 'chargeback' },
    });
    expect(outcome.statusCode, outcome.body).toBe(201);
    await createRule(t, fraud, { expression: 'true', action: 'review', campaign_id: campaignId });
    expectRedeemed(await redeem(t, code, unique('CUS_PENDING_')), 'review');
    const finance = (await t.app.apiKeys.create('finance', ['finance'], 'test')).secret;
    const run = await t.call('POST', '/v1/reconciliations', { key: finance, body: {} });
    expect(run.statusCode, run.body).toBe(201);

    await t.app.relay.drain();
    const text = await scrape();
    expect(total(text, 'promoguard_outbox_published_total')).toBeGreaterThan(0);
    const seeded = METRICS.filter((m) => 'seed' in m);
    expect(new Set(seeded.map((m) => m.seed))).toEqual(
      new Set(['M1', 'M2', 'M3', 'M4', 'M5', 'M6', 'M7', 'M8', 'M9', 'M10']),
    );
    const silent = seeded
      .filter(
        (m) => (m.type === 'histogram' ? total(text, `${m.name}_count`) : samples(text, m.name).length) === 0,
      )
      .map((m) => `${m.seed} ${m.name}`);
    expect(silent).toEqual([]);
    expect(total(text, 'promoguard_review_queue_pending')).toBeGreaterThanOrEqual(1);
    // The gauges read the database, so the campaign keeps its own id past the node's label limit.
    expect(total(text, 'promoguard_code_payment_instruments', { campaign_id: campaignId })).toBe(1);
    expect(
      total(text, 'promoguard_redemption_outcomes_total', { outcome: 'chargeback' }),
    ).toBeGreaterThanOrEqual(1);
  });
});
