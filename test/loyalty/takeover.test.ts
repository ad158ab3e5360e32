/**
 * Account takeover on every backend, through the whole HTTP stack: a conversion draining the balance
 * from a device and network new for the member is challenged and changes nothing; the retry with the
 * step-up and the same Idempotency-Key converts once (also when retried concurrently); the member's
 * usual device passes; a fresh loyalty coupon spent from a new device and card is challenged; wallet
 * reads are decided and recorded with their context; the conversion limits hold under concurrent
 * conversions that run the rules.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listLoyaltyDecisions } from '../../src/store/takeover.js';
import {
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const START = '2026-06-01T12:00:00.000Z';

/** A member's own phone, card and home network (each member its own: shared devices are a ring). */
function homeOf(id: string) {
  return {
    ip: '203.0.113.7',
    device_id: `phone-${id}`,
    user_agent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)',
    payment_fingerprint: `card-${id}`,
  };
}
/** Someone else's laptop, card and network. */
function thiefOf(id: string) {
  return {
    ip: '198.51.100.23',
    device_id: `laptop-${id}`,
    user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)',
    payment_fingerprint: `stolen-card-${id}`,
  };
}

describe.each(backends.map((b) => [b.name, b] as const))('account takeover on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date(START));
  let programId = '';
  let publicCode = '';

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    const created = await t.call('POST', '/v1/points-programs', {
      key: t.keys.marketing,
      body: { name: 'Dollar points', currency: 'USD' },
    });
    expect(created.statusCode, created.body).toBe(201);
    programId = created.json().id;
    publicCode = (await campaignWithCode(t, { name: 'Member orders' })).code;
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(START));

  /** A member with a balance and one order from home (its history). */
  async function member(points = 5_000): Promise<string> {
    const id = unique('cus_m');
    const credited = await t.call('POST', `/v1/customers/${id}/points`, {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('earn') },
      body: { type: 'credit', points, reason: 'orders' },
    });
    expect(credited.statusCode, credited.body).toBe(201);
    const order = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('order') },
      body: checkoutBody(publicCode, { customer: { id }, context: homeOf(id) }),
    });
    expect(order.statusCode, order.body).toBe(201);
    await t.app.loyalty.settled();
    return id;
  }

  function convert(
    customerId: string,
    points: number,
    key: string,
    extra: Record<string, unknown> = {},
    apiKey = t.keys.checkout,
  ) {
    return t.call('POST', `/v1/customers/${customerId}/conversions`, {
      key: apiKey,
      headers: { 'idempotency-key': key },
      body: { program_id: programId, points, ...extra },
    });
  }

  async function state(customerId: string) {
    const db = t.app.db;
    const balance = await sql<{ balance: string }>`
      SELECT balance::text AS balance FROM points_accounts WHERE customer_id = ${customerId}`.execute(db);
    const conversions = await sql<{ id: string }>`
      SELECT id FROM conversions WHERE customer_id = ${customerId}`.execute(db);
    return { balance: Number(balance.rows[0]?.balance ?? 0), conversions: conversions.rows.length };
  }

  it("passes the member's usual conversion from the usual device", async () => {
    const id = await member();
    const HOME = homeOf(id);
    const r = await convert(id, 3_000, unique('cnv'), { context: { ...HOME, ip: '203.0.113.99' } });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().decision.action).toBe('allow');
    expect(r.json().decision.features.customer_device_new).toBe(0);
    expect(r.json().decision.features.customer_prefix_new).toBe(0);
    // Draining it all from home is the member's right too.
    const rest = await convert(id, 2_000, unique('cnv'), { context: HOME });
    expect(rest.statusCode, rest.body).toBe(201);
    expect(await state(id)).toEqual({ balance: 0, conversions: 2 });
  });

  it('challenges a drain from a new device and network; the step-up retry with the same key converts once', async () => {
    const id = await member();
    const THIEF = thiefOf(id);
    const key = unique('cnv');
    const first = await convert(id, 5_000, key, { context: THIEF });
    expect(first.statusCode, first.body).toBe(428);
    const problem = first.json();
    expect(problem.code).toBe('challenge_required');
    expect(problem.decision.because).toContain('rule_default_ato_balance_drain');
    expect(problem.decision.features).toMatchObject({
      customer_device_new: 1,
      customer_prefix_new: 1,
      conversion_balance_share: 1,
    });
    expect(await state(id)).toEqual({ balance: 5_000, conversions: 0 });

    // A forged token, or a token for another conversion, proves nothing.
    const forged = await convert(id, 5_000, key, {
      context: THIEF,
      step_up: { challenge: `${problem.challenge.token}x`, method: 'otp' },
    });
    expect(forged.statusCode).toBe(428);
    const other = await convert(id, 5_000, unique('cnv'), {
      context: THIEF,
      step_up: { challenge: problem.challenge.token, method: 'otp' },
    });
    expect(other.statusCode).toBe(428);

    const retry = await convert(id, 5_000, key, {
      context: THIEF,
      step_up: { challenge: problem.challenge.token, method: 'otp' },
    });
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json().decision.challenge_satisfied).toBe(true);
    const again = await convert(id, 5_000, key, {
      context: THIEF,
      step_up: { challenge: problem.challenge.token, method: 'otp' },
    });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().coupon.code).toBe(retry.json().coupon.code);
    expect(await state(id)).toEqual({ balance: 0, conversions: 1 });

    const decisions = await listLoyaltyDecisions(t.app.db, id);
    expect(decisions.map((d) => d.outcome).sort()).toEqual([
      'challenged',
      'challenged',
      'challenged',
      'converted',
    ]);
    const converted = decisions.find((d) => d.outcome === 'converted');
    expect(converted?.conversionId).toBe(retry.json().id);
    expect(converted?.context?.device_id).toEqual(expect.any(String));
    expect(converted?.context?.device_id).not.toBe(THIEF.device_id);
  });

  it('converts once when step-up retries arrive together', async () => {
    const id = await member();
    const THIEF = thiefOf(id);
    const key = unique('cnv');
    const first = await convert(id, 4_000, key, { context: THIEF });
    expect(first.statusCode).toBe(428);
    const step_up = { challenge: first.json().challenge.token, method: 'otp' };
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => convert(id, 4_000, key, { context: THIEF, step_up })),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(6).fill(201));
    expect(new Set(answers.map((a) => a.json().id)).size).toBe(1);
    expect(await state(id)).toEqual({ balance: 1_000, conversions: 1 });
  });

  it("ignores a storefront's own step-up: only the merchant's backend proves it", async () => {
    const id = await member();
    const THIEF = thiefOf(id);
    const token = (
      await t.call('POST', '/v1/customer-tokens', { key: t.keys.checkout, body: { customer_id: id } })
    ).json().token as string;
    const key = unique('cnv');
    const first = await convert(id, 5_000, key, { context: THIEF }, token);
    expect(first.statusCode, first.body).toBe(428);
    // The storefront learns the token, not the rules.
    expect(first.json().decision).toBeUndefined();
    const step_up = { challenge: first.json().challenge.token, method: 'otp' };
    const own = await convert(id, 5_000, key, { context: THIEF, step_up }, token);
    expect(own.statusCode).toBe(428);
    const backend = await convert(id, 5_000, key, { context: THIEF, step_up });
    expect(backend.statusCode, backend.body).toBe(201);
  });

  it('teaches the history only by a verified step-up: the verified device passes next time', async () => {
    const id = await member(8_000);
    const THIEF = thiefOf(id);
    const small = await convert(id, 1_000, unique('cnv'), { context: THIEF });
    expect(small.statusCode, small.body).toBe(201);
    await t.app.loyalty.settled();
    // The small unverified conversion did not make the device known.
    clock.advance(2 * 3_600_000);
    const key = unique('cnv');
    const drain = await convert(id, 6_000, key, { context: THIEF });
    expect(drain.statusCode).toBe(428);
    const verified = await convert(id, 6_000, key, {
      context: THIEF,
      step_up: { challenge: drain.json().challenge.token, method: 'otp' },
    });
    expect(verified.statusCode).toBe(201);
    await t.app.loyalty.settled();
    const next = await convert(id, 1_000, unique('cnv'), { context: THIEF });
    expect(next.statusCode, next.body).toBe(201);
    expect(next.json().decision.features.customer_device_new).toBe(0);
  });

  it('challenges a fresh loyalty coupon spent from a new device and card; the member spends it', async () => {
    const id = await member();
    const [HOME, THIEF] = [homeOf(id), thiefOf(id)];
    const made = await convert(id, 1_000, unique('cnv'), { context: HOME });
    expect(made.statusCode, made.body).toBe(201);
    const coupon = made.json().coupon.code as string;
    clock.advance(3 * 60_000);
    const thief = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('order') },
      body: checkoutBody(coupon, { customer: { id }, context: THIEF }),
    });
    expect(thief.statusCode, thief.body).toBe(428);
    expect(thief.json().decision.because).toContain('rule_default_ato_coupon_spent_at_once');
    expect(thief.json().decision.features.loyalty_coupon_age_minutes).toBeCloseTo(3, 5);
    const own = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('order') },
      body: checkoutBody(coupon, { customer: { id }, context: HOME }),
    });
    expect(own.statusCode, own.body).toBe(201);
    expect(own.json().decision.action).toBe('allow');
  });

  it('decides and records every wallet read with its context', async () => {
    const id = await member();
    const [HOME, THIEF] = [homeOf(id), thiefOf(id)];
    const read = await t.call('GET', `/v1/customers/${id}/coupons`, {
      key: t.keys.checkout,
      headers: {
        'promoguard-client-ip': THIEF.ip,
        'promoguard-device-id': THIEF.device_id,
        'promoguard-user-agent': THIEF.user_agent,
      },
    });
    expect(read.statusCode, read.body).toBe(200);
    const token = (
      await t.call('POST', '/v1/customer-tokens', { key: t.keys.checkout, body: { customer_id: id } })
    ).json().token as string;
    const own = await t.call('GET', `/v1/customers/${id}/coupons`, {
      key: token,
      headers: { 'user-agent': HOME.user_agent, 'promoguard-device-id': HOME.device_id },
    });
    expect(own.statusCode, own.body).toBe(200);
    const reads = await listLoyaltyDecisions(t.app.db, id);
    const backendRead = reads.find((d) => d.channel === 'checkout');
    const storefront = reads.find((d) => d.channel === 'storefront');
    expect(backendRead?.operation).toBe('wallet_read');
    expect(backendRead?.channel).toBe('checkout');
    expect(backendRead?.outcome).toBe('read');
    expect(backendRead?.context).toMatchObject({
      ip: expect.any(String),
      device_id: expect.any(String),
      user_agent: THIEF.user_agent,
    });
    // The shadow rule saw a thief's first look without stopping it.
    const rules = (backendRead?.decision.rules ?? []) as { id: string; mode: string }[];
    expect(rules.map((r) => `${r.id}:${r.mode}`)).toContain('rule_default_ato_wallet_new_context:shadow');
    expect(storefront?.channel).toBe('storefront');
    expect(storefront?.context).toMatchObject({ ip: expect.any(String), user_agent: HOME.user_agent });
    expect(storefront?.decision.features).toMatchObject({ customer_device_new: 0 });
    // A read never teaches the history.
    const drain = await convert(id, 5_000, unique('cnv'), { context: THIEF });
    expect(drain.statusCode).toBe(428);
  });

  it('holds the daily limit and the balance under concurrent conversions that run the rules', async () => {
    const id = await member(60_000);
    const HOME = homeOf(id);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => convert(id, 5_000, unique('cnv'), { context: HOME })),
    );
    const ok = answers.filter((a) => a.statusCode === 201).length;
    expect(ok).toBe(6);
    expect(answers.filter((a) => a.statusCode === 422).map((a) => a.json().code)).toEqual(
      Array(6).fill('daily_conversion_limit_exceeded'),
    );
    expect(await state(id)).toEqual({ balance: 30_000, conversions: 6 });
    const decisions = await listLoyaltyDecisions(t.app.db, id);
    expect(decisions.filter((d) => d.outcome === 'converted')).toHaveLength(6);
  });
});
