/**
 * GET /v1/codes/{code}/stats (M5 per code): counts what redeemed a code in the window — distinct
 * customers, payment instruments, devices and addresses — with rolled-back redemptions apart, for
 * marketing and fraud keys only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fraudKey } from '../risk/helpers.js';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))('code stats on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(async () => t?.close());

  const redeem = (code: string, customer: string, context: Record<string, string>) =>
    t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, { customer: { id: customer }, context }),
      headers: { 'idempotency-key': unique('K') },
    });

  it('counts distinct customers, cards, devices and addresses; a rollback leaves the count in force', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const card = 'tok_card_shared_0001';
    const made = [
      await redeem(code, 'cus_a', { payment_fingerprint: card, device_id: 'dev-1', ip: '198.51.100.7' }),
      await redeem(code, 'cus_b', { payment_fingerprint: card, device_id: 'dev-2', ip: '198.51.100.7' }),
      await redeem(code, 'cus_c', { payment_fingerprint: 'tok_card_other_0002', ip: '203.0.113.9' }),
    ];
    for (const r of made) expect(r.statusCode, r.body).toBe(201);
    const back = await t.call('POST', `/v1/redemptions/${made[2]?.json().id}/rollback`, {
      key: t.keys.checkout,
      body: {},
    });
    expect(back.statusCode).toBe(200);

    const res = await t.call('GET', `/v1/codes/${code.toLowerCase()}/stats`, { key: t.keys.marketing });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      campaign_id: campaignId,
      redemptions: 2,
      rolled_back: 1,
      discount_minor: 1000,
      distinct_customers: 3,
      distinct_payment_instruments: 2,
      distinct_devices: 2,
      distinct_addresses: 2,
    });
    expect(new Date(res.json().last_redeemed_at).getTime()).toBeGreaterThanOrEqual(
      new Date(res.json().first_redeemed_at).getTime(),
    );
    const byFraud = await t.call('GET', `/v1/codes/${code}/stats?days=1`, { key: await fraudKey(t) });
    expect(byFraud.statusCode).toBe(200);
  });

  it('an unused code reads zeros; an unknown code is 404; checkout keys and bad windows are refused', async () => {
    const { code } = await campaignWithCode(t);
    const empty = await t.call('GET', `/v1/codes/${code}/stats`);
    expect(empty.json()).toMatchObject({ redemptions: 0, distinct_customers: 0, first_redeemed_at: null });
    const unknown = await t.call('GET', `/v1/codes/${unique('NOPE')}/stats`);
    expect(unknown.json()).toMatchObject({ status: 404, code: 'code_not_found' });
    const checkout = await t.call('GET', `/v1/codes/${code}/stats`, { key: t.keys.checkout });
    expect(checkout.statusCode).toBe(403);
    const tooLong = await t.call('GET', `/v1/codes/${code}/stats?days=365`);
    expect(tooLong.statusCode).toBe(400);
  });
});
