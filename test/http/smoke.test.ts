import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))('smoke on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(async () => t?.close());

  it('creates, validates, redeems, rolls back', async () => {
    const { campaignId, code } = await campaignWithCode(t, { redemption_cap: 1 });
    const v = await t.call('POST', '/v1/validations', { key: t.keys.checkout, body: checkoutBody(code) });
    expect(v.statusCode, v.body).toBe(200);
    expect(v.json()).toMatchObject({ valid: true, discount_minor: 500 });
    const r = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code),
      headers: { 'idempotency-key': 'k1' },
    });
    expect(r.statusCode, r.body).toBe(201);
    const again = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code),
      headers: { 'idempotency-key': 'k2' },
    });
    expect(again.statusCode, again.body).toBe(422);
    expect(again.json().reason).toBe('campaign_cap_reached');
    const rb = await t.call('POST', `/v1/redemptions/${r.json().id}/rollback`, { key: t.keys.checkout });
    expect(rb.statusCode, rb.body).toBe(200);
    expect(rb.json().status).toBe('rolled_back');
    const c = await t.call('GET', `/v1/campaigns/${campaignId}`);
    expect(c.json()).toMatchObject({ redemptions_used: 0, spent_minor: 0 });
  });
});
