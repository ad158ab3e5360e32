/**
 * POST /v1/redemptions/{id}/outcome (M7): recorded once per kind, evented, counted, and feeding the
 * labels rules are measured against — a chargeback labels abuse over anything, a fulfilled order
 * labels legitimate only what has no label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))('order outcomes on %s', (_name, backend) => {
  let t: TestApp;
  let code: string;
  beforeAll(async () => {
    t = await startTestApp(backend, { env: { METRICS_DATABASE_READING_MS: '0' } });
    ({ code } = await campaignWithCode(t, { redemption_cap: 1000 }));
  });
  afterAll(async () => t?.close());

  async function redeem(): Promise<{ id: string; decisionId: string }> {
    const res = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, { customer: { id: unique('cus_out_') } }),
      headers: { 'idempotency-key': unique('out-') },
    });
    expect(res.statusCode, res.body).toBe(201);
    return { id: res.json().id, decisionId: res.json().decision.id };
  }
  const report = (id: string, body: Record<string, unknown>, key = t.keys.checkout) =>
    t.call('POST', `/v1/redemptions/${id}/outcome`, { key, body });
  const labelOf = async (decisionId: string) =>
    (await t.call('GET', `/v1/decisions/${decisionId}`)).json().label as string | null;

  it('records a chargeback once, labels the decision abuse, and answers a repeat with the first record', async () => {
    const r = await redeem();
    const first = await report(r.id, { outcome: 'chargeback', amount_minor: 9500, note: 'bank dispute' });
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ outcome: 'chargeback', amount_minor: 9500, label: 'abuse' });
    const repeat = await report(r.id, { outcome: 'chargeback', amount_minor: 1 });
    expect(repeat.statusCode).toBe(200);
    expect(repeat.json()).toMatchObject({ amount_minor: 9500, recorded_at: first.json().recorded_at });
    expect(await labelOf(r.decisionId)).toBe('abuse');
    const events = await t.app.db
      .selectFrom('outbox')
      .select('type')
      .where('aggregate_id', '=', r.id)
      .where('type', '=', 'redemption.outcome_recorded')
      .execute();
    expect(events).toHaveLength(1);
  });

  it('labels a fulfilled order legitimate, but never over an abuse label', async () => {
    const clean = await redeem();
    expect((await report(clean.id, { outcome: 'fulfilled' })).json().label).toBe('legitimate');
    expect(await labelOf(clean.decisionId)).toBe('legitimate');
    const disputed = await redeem();
    await report(disputed.id, { outcome: 'confirmed_abuse' });
    const fulfilled = await report(disputed.id, { outcome: 'fulfilled' });
    expect(fulfilled.statusCode).toBe(201);
    expect(fulfilled.json().label).toBeNull();
    expect(await labelOf(disputed.decisionId)).toBe('abuse');
  });

  it('gives a refund no label', async () => {
    const r = await redeem();
    expect((await report(r.id, { outcome: 'refund', amount_minor: 200 })).json().label).toBeNull();
    expect(await labelOf(r.decisionId)).toBeNull();
  });

  it('refuses an unknown redemption, an unknown kind and a key without the scope', async () => {
    expect((await report('red_00000000000000000000000000', { outcome: 'refund' })).statusCode).toBe(404);
    const r = await redeem();
    expect((await report(r.id, { outcome: 'lost_in_post' })).statusCode).toBe(400);
    expect((await report(r.id, { outcome: 'refund' }, t.keys.marketing)).statusCode).toBe(403);
  });

  it('counts outcomes and their labels in the metrics (M7, M2)', async () => {
    const r = await redeem();
    await report(r.id, { outcome: 'chargeback' });
    const text = (await t.call('GET', '/metrics', { key: null })).body;
    expect(text).toMatch(
      /promoguard_redemption_outcomes_total\{campaign_id="cmp_[^"]+",outcome="chargeback"\} [1-9]/,
    );
    expect(text).toMatch(/promoguard_labels_total\{label="abuse",source="outcome"\} [1-9]/);
    expect(text).toMatch(/promoguard_detection_latency_seconds_count\{source="label"\} [1-9]/);
  });
});
