import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkoutBody, startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))('loyalty smoke on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(async () => t?.close());

  it('credits, converts, lists the wallet, redeems, shows used', async () => {
    const prg = await t.call('POST', '/v1/points-programs', {
      body: { name: 'Yen points', currency: 'JPY' },
    });
    expect(prg.statusCode, prg.body).toBe(201);
    const credit = await t.call('POST', '/v1/customers/cus_70934/points', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': 'earn-1' },
      body: { type: 'credit', points: 1200, reason: 'order 1' },
    });
    expect(credit.statusCode, credit.body).toBe(201);
    const conv = await t.call('POST', '/v1/customers/cus_70934/conversions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': 'conv-1' },
      body: { program_id: prg.json().id, points: 500 },
    });
    expect(conv.statusCode, conv.body).toBe(201);
    const code = conv.json().coupon.code as string;
    expect(code).toMatch(/^70934-[2-9A-HJ-NP-Z]{6}-500$/);
    const token = (
      await t.call('POST', '/v1/customer-tokens', {
        key: t.keys.checkout,
        body: { customer_id: 'cus_70934' },
      })
    ).json().token;
    const wallet = await t.call('GET', '/v1/customers/cus_70934/coupons', { key: token });
    expect(wallet.statusCode, wallet.body).toBe(200);
    expect(wallet.json().data[0]).toMatchObject({
      code,
      amount_minor: 500,
      currency: 'JPY',
      status: 'unused',
    });
    const other = await t.call('GET', '/v1/customers/cus_1/coupons', { key: token });
    expect(other.statusCode).toBe(403);
    const stolen = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': 'r-0' },
      body: checkoutBody(code, {
        customer: { id: 'cus_99999' },
        cart: { currency: 'JPY', subtotal_minor: 5000 },
      }),
    });
    expect(stolen.json()).toMatchObject({
      reason: 'code_bound_to_other_customer',
      detail: 'This code cannot be used',
    });
    const redeemed = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': 'r-1' },
      body: checkoutBody(code, {
        customer: { id: 'cus_70934' },
        cart: { currency: 'JPY', subtotal_minor: 5000 },
      }),
    });
    expect(redeemed.statusCode, redeemed.body).toBe(201);
    expect(redeemed.json().discount_minor).toBe(500);
    const after = await t.call('GET', '/v1/customers/cus_70934/coupons', { key: token });
    expect(after.json().data[0]).toMatchObject({ status: 'used' });
    const points = await t.call('GET', '/v1/customers/cus_70934/points', { key: token });
    expect(points.json()).toMatchObject({ balance: 700, converted_today: 500 });
  });
});
