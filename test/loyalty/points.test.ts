/**
 * Points and their conversion into coupons through the whole HTTP stack, on every backend: credits
 * and debits with idempotency, every conversion refusal (and that it changes nothing), the coupon's
 * single use and customer binding, expiry (with and without the refund of points), the wallet,
 * the UTC day boundary, tier multipliers, customer tokens and the events.
 *
 * One app per backend with a TestClock; every test uses its own customers and sets the clock first.
 */
import { createHmac } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import { checkoutBody, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const START = '2026-06-01T12:00:00.000Z';
const DAY_MS = 86_400_000;

interface Program {
  id: string;
  campaign_id: string;
}

/** Everything a points request could change for one customer, read straight from the tables. */
async function snapshot(t: TestApp, customerId: string) {
  const db = t.app.db;
  const balance = await sql<{ balance: string }>`
    SELECT balance::text AS balance FROM points_accounts WHERE customer_id = ${customerId}`.execute(db);
  const movements = await sql<{ id: string; kind: string; points: string; balance_after: string }>`
    SELECT id::text AS id, kind, points::text AS points, balance_after::text AS balance_after
      FROM points_movements WHERE customer_id = ${customerId} ORDER BY id`.execute(db);
  const codes = await sql<{ id: string; uses: number; status: string }>`
    SELECT id, uses::int AS uses, status FROM codes WHERE customer_id = ${customerId} ORDER BY id`.execute(
    db,
  );
  const conversions = await sql<{ id: string }>`
    SELECT id FROM conversions WHERE customer_id = ${customerId} ORDER BY id`.execute(db);
  const daily = await sql<{ utc_day: string; points: string }>`
    SELECT utc_day::text AS utc_day, points::text AS points FROM points_daily
     WHERE customer_id = ${customerId} ORDER BY utc_day`.execute(db);
  const outbox = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM outbox WHERE aggregate_id = ${customerId}`.execute(db);
  return {
    balance: balance.rows[0] ? Number(balance.rows[0].balance) : null,
    movements: movements.rows,
    codes: codes.rows,
    conversions: conversions.rows,
    daily: daily.rows,
    events: Number(outbox.rows[0]?.n ?? 0),
  };
}

describe.each(backends.map((b) => [b.name, b] as const))('points and conversions on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date(START));
  let program: Program;

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    const created = await t.call('POST', '/v1/points-programs', {
      key: t.keys.marketing,
      body: { name: 'Yen points', currency: 'JPY' },
    });
    expect(created.statusCode, created.body).toBe(201);
    program = created.json();
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(START));

  function points(
    customerId: string,
    body: Record<string, unknown>,
    idempotencyKey: string | null,
    key = t.keys.checkout,
  ): Promise<LightMyRequestResponse> {
    return t.call('POST', `/v1/customers/${customerId}/points`, {
      key,
      body,
      headers: idempotencyKey === null ? {} : { 'idempotency-key': idempotencyKey },
    });
  }

  async function credit(customerId: string, amount: number): Promise<void> {
    const r = await points(customerId, { type: 'credit', points: amount, reason: 'order' }, unique('earn-'));
    expect(r.statusCode, r.body).toBe(201);
  }

  function convert(
    customerId: string,
    amount: number,
    options: { key?: string; idempotencyKey?: string; tier?: string; programId?: string } = {},
  ): Promise<LightMyRequestResponse> {
    return t.call('POST', `/v1/customers/${customerId}/conversions`, {
      key: options.key ?? t.keys.checkout,
      body: {
        program_id: options.programId ?? program.id,
        points: amount,
        ...(options.tier === undefined ? {} : { tier: options.tier }),
      },
      headers: { 'idempotency-key': options.idempotencyKey ?? unique('conv-') },
    });
  }

  async function converted(customerId: string, amount: number, options: Parameters<typeof convert>[2] = {}) {
    const r = await convert(customerId, amount, options);
    expect(r.statusCode, r.body).toBe(201);
    return r.json() as {
      id: string;
      points: number;
      amount_minor: number;
      utc_day: string;
      coupon: { code: string; amount_minor: number; currency: string; expires_at: string };
    };
  }

  function redeem(code: string, customerId: string, idempotencyKey = unique('red-')) {
    return t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': idempotencyKey },
      body: checkoutBody(code, {
        customer: { id: customerId },
        cart: { currency: 'JPY', subtotal_minor: 50_000 },
      }),
    });
  }

  function validate(code: string, customerId: string) {
    return t.call('POST', '/v1/validations', {
      key: t.keys.checkout,
      body: checkoutBody(code, {
        customer: { id: customerId },
        cart: { currency: 'JPY', subtotal_minor: 50_000 },
      }),
    });
  }

  async function wallet(customerId: string, query = '', key = t.keys.checkout) {
    const r = await t.call('GET', `/v1/customers/${customerId}/coupons${query}`, { key });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as {
      data: {
        code: string;
        status: string;
        used_at: string | null;
        amount_minor: number;
        expires_at: string;
      }[];
      next_cursor: string | null;
    };
  }

  async function summary(customerId: string, key = t.keys.checkout) {
    const r = await t.call('GET', `/v1/customers/${customerId}/points`, { key });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as {
      balance: number;
      converted_today: number;
      movements: { id: number; kind: string; points: number; balance_after: number }[];
      next_cursor: number | null;
    };
  }

  async function token(customerId: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await t.call('POST', '/v1/customer-tokens', {
      key: t.keys.checkout,
      body: { customer_id: customerId, ...extra },
    });
    expect(r.statusCode, r.body).toBe(201);
    return r.json().token as string;
  }

  /**
   * The distinct events in `events` once at least `count` match `match`. The relay's own background
   * pass may hold a claim on an event while `drain()` returns, so drain and look again until then.
   */
  function deliveredEvents(events: DomainEvent[], match: (e: DomainEvent) => boolean, count: number) {
    return vi.waitFor(
      async () => {
        await t.app.relay.drain();
        const distinct = [...new Map(events.map((e) => [e.id, e])).values()];
        if (distinct.filter(match).length < count) throw new Error(`fewer than ${count} events delivered`);
        return distinct;
      },
      { timeout: 10_000, interval: 20 },
    );
  }

  async function createProgram(body: Record<string, unknown>): Promise<Program> {
    const r = await t.call('POST', '/v1/points-programs', {
      key: t.keys.marketing,
      body: { name: unique('Program '), currency: 'JPY', ...body },
    });
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  }

  describe('credit and debit', () => {
    it('credits once per idempotency key; a repeat returns the same movement, marked replayed', async () => {
      const customer = 'cus_credit1';
      const key = unique('earn-');
      const first = await points(customer, { type: 'credit', points: 1000, reason: 'order 1' }, key);
      expect(first.statusCode, first.body).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(first.json()).toMatchObject({
        customer_id: customer,
        balance: 1000,
        movement: { kind: 'credit', points: 1000, balance_after: 1000, reason: 'order 1' },
      });

      const again = await points(customer, { type: 'credit', points: 1000, reason: 'order 1' }, key);
      expect(again.statusCode, again.body).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toEqual(first.json());
      expect((await snapshot(t, customer)).balance).toBe(1000);
      expect((await snapshot(t, customer)).movements).toHaveLength(1);
    });

    it('refuses the same key with a different body (422 idempotency_key_reused) and changes nothing', async () => {
      const customer = 'cus_credit2';
      const key = unique('earn-');
      expect(
        (await points(customer, { type: 'credit', points: 1000, reason: 'order 1' }, key)).statusCode,
      ).toBe(201);
      const before = await snapshot(t, customer);
      for (const body of [
        { type: 'credit', points: 999, reason: 'order 1' },
        { type: 'credit', points: 1000, reason: 'order 2' },
        { type: 'debit', points: 1000, reason: 'order 1' },
      ]) {
        const r = await points(customer, body, key);
        expect(r.statusCode, r.body).toBe(422);
        expect(r.json()).toMatchObject({ code: 'idempotency_key_reused', status: 422 });
      }
      expect(await snapshot(t, customer)).toEqual(before);
      // Keys are each customer's own: another customer's use of the same key is its own request.
      const other = await points('cus_credit2b', { type: 'credit', points: 1000, reason: 'order 1' }, key);
      expect(other.statusCode, other.body).toBe(201);
      expect(await snapshot(t, customer)).toEqual(before);
    });

    it('needs an Idempotency-Key (400) and a checkout key', async () => {
      const customer = 'cus_credit3';
      const missing = await points(customer, { type: 'credit', points: 100, reason: 'x' }, null);
      expect(missing.statusCode, missing.body).toBe(400);
      expect(missing.json().code).toBe('idempotency_key_required');
      const missingConversion = await t.call('POST', `/v1/customers/${customer}/conversions`, {
        key: t.keys.checkout,
        body: { program_id: program.id, points: 100 },
      });
      expect(missingConversion.statusCode, missingConversion.body).toBe(400);
      expect(missingConversion.json().code).toBe('idempotency_key_required');
      const marketing = await points(
        customer,
        { type: 'credit', points: 100, reason: 'x' },
        unique('earn-'),
        t.keys.marketing,
      );
      expect(marketing.statusCode).toBe(403);
      const anonymous = await t.call('POST', `/v1/customers/${customer}/points`, {
        key: null,
        body: { type: 'credit', points: 100, reason: 'x' },
        headers: { 'idempotency-key': unique('earn-') },
      });
      expect(anonymous.statusCode).toBe(401);
      expect(await snapshot(t, customer)).toMatchObject({ balance: null, movements: [], events: 0 });
    });

    it('debits, also idempotently, with signed movements newest first', async () => {
      const customer = 'cus_debit1';
      await credit(customer, 1000);
      const key = unique('spend-');
      const debit = await points(customer, { type: 'debit', points: 300, reason: 'manual' }, key);
      expect(debit.statusCode, debit.body).toBe(201);
      expect(debit.json()).toMatchObject({
        balance: 700,
        movement: { kind: 'debit', points: -300, balance_after: 700 },
      });
      const again = await points(customer, { type: 'debit', points: 300, reason: 'manual' }, key);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toEqual(debit.json());
      const s = await summary(customer);
      expect(s.balance).toBe(700);
      expect(s.movements.map((m) => [m.kind, m.points, m.balance_after])).toEqual([
        ['debit', -300, 700],
        ['credit', 1000, 1000],
      ]);
    });

    it('refuses a debit beyond the balance (422 insufficient_points) and changes nothing', async () => {
      const customer = 'cus_debit2';
      await credit(customer, 700);
      const before = await snapshot(t, customer);
      const key = unique('spend-');
      const r = await points(customer, { type: 'debit', points: 701, reason: 'too much' }, key);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json()).toMatchObject({ code: 'insufficient_points', status: 422 });
      expect(await snapshot(t, customer)).toEqual(before);

      // A customer without an account has nothing to debit.
      const none = await points(
        'cus_debit2_none',
        { type: 'debit', points: 1, reason: 'x' },
        unique('spend-'),
      );
      expect(none.statusCode, none.body).toBe(422);
      expect(none.json().code).toBe('insufficient_points');
      expect(await snapshot(t, 'cus_debit2_none')).toMatchObject({ balance: null, movements: [] });

      // The whole balance can be debited: the balance reaches zero, never below.
      const all = await points(customer, { type: 'debit', points: 700, reason: 'all' }, unique('spend-'));
      expect(all.statusCode, all.body).toBe(201);
      expect(all.json().balance).toBe(0);
    });
  });

  describe('conversion refusals', () => {
    it.each([
      [99, 'conversion_below_minimum'],
      [150, 'conversion_not_in_steps'],
      [10_100, 'conversion_above_maximum'],
    ] as const)('%i points -> 422 %s, nothing changed', async (amount, code) => {
      const customer = `cus_refuse_${amount}`;
      await credit(customer, 50_000);
      const before = await snapshot(t, customer);
      const r = await convert(customer, amount);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json()).toMatchObject({
        code,
        status: 422,
        limits: {
          min_points: 100,
          step_points: 100,
          max_points_per_conversion: 10_000,
          daily_limit_points: 30_000,
        },
      });
      expect(await snapshot(t, customer)).toEqual(before);
      expect((await summary(customer)).converted_today).toBe(0);
      expect((await wallet(customer)).data).toEqual([]);
    });

    it('daily limit: 30,000 a UTC day converts, the next 100 is 422 daily_conversion_limit_exceeded, nothing changed', async () => {
      const customer = 'cus_refuse_daily';
      await credit(customer, 50_000);
      for (const amount of [10_000, 10_000, 9_900, 100]) await converted(customer, amount);
      expect((await summary(customer)).converted_today).toBe(30_000);
      const before = await snapshot(t, customer);
      expect(before.daily).toEqual([{ utc_day: '2026-06-01', points: '30000' }]);
      const r = await convert(customer, 100);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json()).toMatchObject({
        code: 'daily_conversion_limit_exceeded',
        limits: { converted_today: 30_000 },
      });
      expect(await snapshot(t, customer)).toEqual(before);
      const s = await summary(customer);
      expect(s).toMatchObject({ balance: 20_000, converted_today: 30_000 });
    });

    it('daily limit edge: after 29,900, 100 more is fine but 200 is refused', async () => {
      const customer = 'cus_refuse_daily2';
      await credit(customer, 50_000);
      for (const amount of [10_000, 10_000, 9_900]) await converted(customer, amount);
      const before = await snapshot(t, customer);
      const r = await convert(customer, 200);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json().code).toBe('daily_conversion_limit_exceeded');
      expect(await snapshot(t, customer)).toEqual(before);
      await converted(customer, 100);
      expect((await summary(customer)).converted_today).toBe(30_000);
    });

    it('more points than the balance -> 422 insufficient_points, nothing changed', async () => {
      const customer = 'cus_refuse_balance';
      await credit(customer, 999);
      const before = await snapshot(t, customer);
      const r = await convert(customer, 1000);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json()).toMatchObject({ code: 'insufficient_points', status: 422 });
      expect(await snapshot(t, customer)).toEqual(before);
      expect((await summary(customer)).converted_today).toBe(0);

      const stranger = await convert('cus_refuse_nobody', 100);
      expect(stranger.statusCode, stranger.body).toBe(422);
      expect(stranger.json().code).toBe('insufficient_points');
      expect(await snapshot(t, 'cus_refuse_nobody')).toMatchObject({ balance: null, codes: [], daily: [] });
    });

    it('an unknown program is 404 points_program_not_found and changes nothing', async () => {
      const customer = 'cus_refuse_program';
      await credit(customer, 1000);
      const before = await snapshot(t, customer);
      const r = await convert(customer, 100, { programId: 'prg_00000000000000000000000000' });
      expect(r.statusCode, r.body).toBe(404);
      expect(r.json().code).toBe('points_program_not_found');
      expect(await snapshot(t, customer)).toEqual(before);
    });

    it('a program whose campaign is paused is 422 points_program_inactive and spends nothing', async () => {
      const paused = await createProgram({});
      const customer = unique('cus_refuse_paused_');
      await credit(customer, 1000);
      const pause = await t.call('POST', `/v1/campaigns/${paused.campaign_id}/pause`, {
        key: t.keys.marketing,
        body: { reason: 'test' },
      });
      expect(pause.statusCode, pause.body).toBe(200);
      const before = await snapshot(t, customer);
      const r = await convert(customer, 500, { programId: paused.id });
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json().code).toBe('points_program_inactive');
      expect(await snapshot(t, customer)).toEqual(before);
      expect(await summary(customer)).toMatchObject({ balance: 1000, converted_today: 0 });
    });
  });

  describe('the coupon', () => {
    it('is shaped like 70934-XXXXXX-500, worth the points, valid for a year, and converting is idempotent', async () => {
      const customer = 'cus_70934';
      await credit(customer, 1200);
      const key = unique('conv-');
      const first = await convert(customer, 500, { idempotencyKey: key });
      expect(first.statusCode, first.body).toBe(201);
      expect(first.json()).toMatchObject({
        customer_id: customer,
        program_id: program.id,
        points: 500,
        amount_minor: 500,
        currency: 'JPY',
        utc_day: '2026-06-01',
        coupon: { amount_minor: 500, currency: 'JPY', expires_at: '2027-06-01T12:00:00.000Z' },
      });
      expect(first.json().coupon.code).toMatch(/^70934-[2-9A-HJ-NP-Z]{6}-500$/);
      const again = await convert(customer, 500, { idempotencyKey: key });
      expect(again.statusCode, again.body).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toEqual(first.json());
      const reused = await convert(customer, 600, { idempotencyKey: key });
      expect(reused.statusCode, reused.body).toBe(422);
      expect(reused.json().code).toBe('idempotency_key_reused');
      const s = await snapshot(t, customer);
      expect(s.balance).toBe(700);
      expect(s.codes).toHaveLength(1);
      expect(s.conversions).toHaveLength(1);
      expect(s.movements.map((m) => [m.kind, m.points, m.balance_after])).toEqual([
        ['credit', '1200', '1200'],
        ['conversion', '-500', '700'],
      ]);
    });

    it('is single use and bound to its customer: others read "This code cannot be used"', async () => {
      const customer = 'cus_bound1';
      await credit(customer, 1000);
      const { coupon } = await converted(customer, 500);

      const stolen = await redeem(coupon.code, 'cus_thief');
      expect(stolen.statusCode, stolen.body).toBe(422);
      expect(stolen.json()).toMatchObject({
        code: 'redemption_refused',
        reason: 'code_bound_to_other_customer',
        detail: 'This code cannot be used',
      });
      const check = await validate(coupon.code, 'cus_thief');
      expect(check.json()).toMatchObject({
        valid: false,
        reason: 'code_bound_to_other_customer',
        message: 'This code cannot be used',
      });

      clock.advance(60_000);
      const used = await redeem(coupon.code, customer);
      expect(used.statusCode, used.body).toBe(201);
      expect(used.json().discount_minor).toBe(500);
      const twice = await redeem(coupon.code, customer);
      expect(twice.statusCode, twice.body).toBe(422);
      expect(twice.json()).toMatchObject({ reason: 'code_used_up', detail: 'This code cannot be used' });
      // Normalisation does not open a second use: lower case and no dashes is the same code.
      const typed = await redeem(coupon.code.toLowerCase().replaceAll('-', ''), customer);
      expect(typed.json()).toMatchObject({ reason: 'code_used_up' });
      const stolenUsed = await redeem(coupon.code, 'cus_thief');
      expect(stolenUsed.json()).toMatchObject({ reason: 'code_bound_to_other_customer' });

      expect((await wallet(customer)).data).toEqual([
        expect.objectContaining({ code: coupon.code, status: 'used', used_at: '2026-06-01T12:01:00.000Z' }),
      ]);
      expect((await wallet('cus_thief')).data).toEqual([]);
    });

    it('rolling back the redemption makes it usable again and the wallet shows it unused', async () => {
      const customer = 'cus_rollback1';
      await credit(customer, 1000);
      const { coupon } = await converted(customer, 300);
      const used = await redeem(coupon.code, customer);
      expect(used.statusCode, used.body).toBe(201);
      expect((await wallet(customer)).data[0]).toMatchObject({ status: 'used' });

      const rolledBack = await t.call('POST', `/v1/redemptions/${used.json().id}/rollback`, {
        key: t.keys.checkout,
        body: { reason: 'order cancelled' },
      });
      expect(rolledBack.statusCode, rolledBack.body).toBe(200);
      expect((await wallet(customer)).data[0]).toMatchObject({
        code: coupon.code,
        status: 'unused',
        used_at: null,
      });
      // The points stay converted: a rollback gives back the coupon, not the points.
      expect((await summary(customer)).balance).toBe(700);

      const again = await redeem(coupon.code, customer);
      expect(again.statusCode, again.body).toBe(201);
      expect(again.json().discount_minor).toBe(300);
      expect((await wallet(customer)).data[0]).toMatchObject({ status: 'used' });
    });

    it('expires at expires_at exactly: refused with code_expired, shown expired, points not returned', async () => {
      const customer = 'cus_expiry1';
      await credit(customer, 1000);
      const { coupon } = await converted(customer, 400);
      expect(coupon.expires_at).toBe('2027-06-01T12:00:00.000Z');

      clock.set('2027-06-01T11:59:59.999Z');
      expect((await validate(coupon.code, customer)).json()).toMatchObject({
        valid: true,
        discount_minor: 400,
      });
      expect((await wallet(customer)).data[0]).toMatchObject({ status: 'unused' });

      clock.set(coupon.expires_at);
      const check = await validate(coupon.code, customer);
      expect(check.json()).toMatchObject({ valid: false, reason: 'code_expired' });
      const r = await redeem(coupon.code, customer);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json()).toMatchObject({ reason: 'code_expired', detail: 'This code cannot be used' });
      expect((await wallet(customer)).data[0]).toMatchObject({
        code: coupon.code,
        status: 'expired',
        used_at: null,
        expires_at: '2027-06-01T12:00:00.000Z',
      });

      // The default program keeps the points of an expired coupon.
      const before = await snapshot(t, customer);
      await t.app.points.refundExpired();
      clock.advance(30 * DAY_MS);
      await t.app.points.refundExpired();
      expect(await snapshot(t, customer)).toEqual(before);
      expect(before.balance).toBe(600);
      expect(before.movements.map((m) => m.kind)).toEqual(['credit', 'conversion']);
    });

    it('a program with refund_on_expiry returns the points of an unused expired coupon exactly once', async () => {
      const refunding = await createProgram({ refund_on_expiry: true, validity_months: 1 });
      expect(refunding).toMatchObject({ refund_on_expiry: true, validity_months: 1 });
      const customer = 'cus_refund1';
      await credit(customer, 1000);
      const unused = await converted(customer, 400, { programId: refunding.id });
      const used = await converted(customer, 200, { programId: refunding.id });
      expect(unused.coupon.expires_at).toBe('2026-07-01T12:00:00.000Z');
      expect((await redeem(used.coupon.code, customer)).statusCode).toBe(201);
      expect((await summary(customer)).balance).toBe(400);

      // Not before expiry.
      clock.set('2026-07-01T11:59:59.999Z');
      expect(await t.app.points.refundExpired()).toBe(0);
      expect((await summary(customer)).balance).toBe(400);

      // At expiry the coupon is refused, but the refund waits a minute of grace (clocks of nodes differ).
      clock.set(unused.coupon.expires_at);
      expect(await t.app.points.refundExpired()).toBe(0);
      clock.advance(60_000);
      const events: DomainEvent[] = [];
      const unsubscribe = t.app.bus.subscribe((e) => {
        if (e.aggregateId === customer) events.push(e);
      });
      try {
        expect(await t.app.points.refundExpired()).toBe(1);
        expect(await t.app.points.refundExpired()).toBe(0);
        clock.advance(DAY_MS);
        expect(await t.app.points.refundExpired()).toBe(0);
        await deliveredEvents(events, (e) => e.type === 'points.refunded', 1);
      } finally {
        unsubscribe();
      }
      const s = await summary(customer);
      expect(s.balance).toBe(800);
      expect(s.movements.filter((m) => m.kind === 'expiry_refund')).toEqual([
        expect.objectContaining({ kind: 'expiry_refund', points: 400, balance_after: 800 }),
      ]);
      const refunds = events.filter((e) => e.type === 'points.refunded');
      expect(new Set(refunds.map((e) => e.id)).size).toBe(1);
      expect(refunds[0]?.payload).toMatchObject({ conversion: { id: unused.id, points: 400 } });
      // The coupon stays expired; the daily total still counts what was converted that day.
      expect((await wallet(customer)).data.find((c) => c.code === unused.coupon.code)).toMatchObject({
        status: 'expired',
      });
      expect((await snapshot(t, customer)).daily).toEqual([{ utc_day: '2026-06-01', points: '600' }]);
    });

    // The refund's movement is stored under the idempotency key `expiry-refund:<conversion id>`, a key
    // a checkout backend may also send (it sees conversion ids). A credit that happens to use it must
    // not block the refund of that coupon, nor of the coupons behind it in the job's batch.
    // (Runs last among the tests that call refundExpired: if it fails, later calls would fail too.)
    it("a merchant's idempotency key cannot block the expiry refund", async () => {
      const refunding = await createProgram({ refund_on_expiry: true, validity_months: 1 });
      const customer = 'cus_refund_key';
      await credit(customer, 1000);
      const a = await converted(customer, 300, { programId: refunding.id });
      await converted(customer, 200, { programId: refunding.id });
      const bonus = await points(
        customer,
        { type: 'credit', points: 50, reason: 'bonus' },
        `expiry-refund:${a.id}`,
      );
      expect(bonus.statusCode, bonus.body).toBe(201);
      expect((await summary(customer)).balance).toBe(550);

      clock.set(a.coupon.expires_at);
      clock.advance(60_000);
      await expect(t.app.points.refundExpired()).resolves.toBeTypeOf('number');
      const s = await summary(customer);
      expect(s.balance).toBe(1050);
      expect(
        s.movements
          .filter((m) => m.kind === 'expiry_refund')
          .map((m) => m.points)
          .sort(),
      ).toEqual([200, 300]);
    });
  });

  describe('the wallet', () => {
    it('lists the coupons newest first, with paging and every status', async () => {
      const customer = 'cus_wallet1';
      await credit(customer, 5000);
      const made: { code: string; expires_at: string }[] = [];
      for (const amount of [100, 200, 300, 400, 500]) {
        made.push((await converted(customer, amount)).coupon);
        clock.advance(1000);
      }
      const [c100, c200, c300, c400, c500] = made as [
        (typeof made)[0],
        (typeof made)[0],
        (typeof made)[0],
        (typeof made)[0],
        (typeof made)[0],
      ];
      // 200: used; 300: revoked; 100: expired (it is the first to expire); 400, 500: unused.
      clock.set('2026-06-02T09:00:00.000Z');
      expect((await redeem(c200.code, customer)).statusCode).toBe(201);
      const revoke = await t.call('POST', `/v1/codes/${encodeURIComponent(c300.code)}/revoke`, {
        key: t.keys.marketing,
        body: { reason: 'support' },
      });
      expect(revoke.statusCode, revoke.body).toBe(200);
      clock.set(c100.expires_at);

      const all = await wallet(customer);
      expect(all.next_cursor).toBeNull();
      expect(all.data.map((c) => [c.code, c.amount_minor, c.status, c.used_at])).toEqual([
        [c500.code, 500, 'unused', null],
        [c400.code, 400, 'unused', null],
        [c300.code, 300, 'revoked', null],
        [c200.code, 200, 'used', '2026-06-02T09:00:00.000Z'],
        [c100.code, 100, 'expired', null],
      ]);

      const page1 = await wallet(customer, '?limit=2');
      expect(page1.data.map((c) => c.code)).toEqual([c500.code, c400.code]);
      expect(page1.next_cursor).not.toBeNull();
      const page2 = await wallet(customer, `?limit=2&cursor=${page1.next_cursor}`);
      expect(page2.data.map((c) => c.code)).toEqual([c300.code, c200.code]);
      expect(page2.next_cursor).not.toBeNull();
      const page3 = await wallet(customer, `?limit=2&cursor=${page2.next_cursor}`);
      expect(page3.data.map((c) => c.code)).toEqual([c100.code]);
      expect(page3.next_cursor).toBeNull();

      // The storefront sees the same through a customer token.
      const own = await wallet(customer, '', await token(customer));
      expect(own.data.map((c) => c.status)).toEqual(['unused', 'unused', 'revoked', 'used', 'expired']);
      // Another customer's wallet holds none of these.
      expect((await wallet('cus_wallet_other')).data).toEqual([]);
    });

    it('answers a movements cursor beyond any id with 400, not 500', async () => {
      for (const cursor of ['1e21', '99999999999999999999']) {
        const r = await t.call('GET', `/v1/customers/cus_wallet_cursor/points?cursor=${cursor}`, {
          key: t.keys.checkout,
        });
        expect(r.statusCode, `${cursor} ${r.body}`).toBe(400);
      }
    });
  });

  describe('the UTC day', () => {
    it('resets the daily limit at 00:00 UTC', async () => {
      const customer = 'cus_day1';
      await credit(customer, 50_000);
      clock.set('2026-06-01T23:59:00.000Z');
      for (let i = 0; i < 3; i++) await converted(customer, 10_000);
      clock.set('2026-06-01T23:59:59.999Z');
      const late = await convert(customer, 100);
      expect(late.statusCode, late.body).toBe(422);
      expect(late.json().code).toBe('daily_conversion_limit_exceeded');
      expect((await summary(customer)).converted_today).toBe(30_000);

      clock.set('2026-06-02T00:00:00.000Z');
      expect((await summary(customer)).converted_today).toBe(0);
      const next = await converted(customer, 10_000);
      expect(next.utc_day).toBe('2026-06-02');
      expect(await summary(customer)).toMatchObject({ converted_today: 10_000, balance: 10_000 });
      expect((await snapshot(t, customer)).daily).toEqual([
        { utc_day: '2026-06-01', points: '30000' },
        { utc_day: '2026-06-02', points: '10000' },
      ]);
    });
  });

  describe('multipliers', () => {
    let boosted: Program;
    beforeAll(async () => {
      // Its campaign starts when it is created: create it at the start of the tests' day.
      clock.set(START);
      boosted = await createProgram({ multiplier_bp: 15_000, tier_multipliers_bp: { gold: 12_000 } });
    });

    it('a checkout key passes the tier in the body: x1.5 program, gold x1.2 = x1.8, rounded down', async () => {
      const customer = 'cus_tier1';
      await credit(customer, 10_000);
      const gold = await converted(customer, 1000, { programId: boosted.id, tier: 'gold' });
      expect(gold).toMatchObject({ points: 1000, amount_minor: 1800, coupon: { amount_minor: 1800 } });
      // The code's last part is the discount it gives, not the points it cost.
      expect(gold.coupon.code).toMatch(/^[0-9]{5}-[2-9A-HJ-NP-Z]{6}-1800$/);
      const plain = await converted(customer, 1000, { programId: boosted.id });
      expect(plain.amount_minor).toBe(1500);
      // The points consumed are the points asked for, whatever the multiplier.
      expect((await summary(customer)).balance).toBe(10_000 - 2000);
      // The discount is the coupon's amount.
      const r = await redeem(gold.coupon.code, customer);
      expect(r.json().discount_minor).toBe(1800);
    });

    it('a program may show the points instead, or both, with {points} and {amount} in its code_format', async () => {
      const customer = 'cus_70934_formats';
      await credit(customer, 2000);
      const bothWays = await createProgram({
        multiplier_bp: 15_000,
        code_format: 'P{points}-{random6}-{amount}',
      });
      expect(bothWays).toMatchObject({ code_format: 'P{points}-{random6}-{amount}' });
      const both = await converted(customer, 1000, { programId: bothWays.id });
      expect(both.coupon.code).toMatch(/^P1000-[2-9A-HJ-NP-Z]{6}-1500$/);
      const byPoints = await createProgram({
        multiplier_bp: 15_000,
        code_format: '{customer5}-{random6}-{points}',
      });
      const shown = await converted(customer, 1000, { programId: byPoints.id });
      expect(shown.coupon.code).toMatch(/^70934-[2-9A-HJ-NP-Z]{6}-1000$/);
      expect(shown.amount_minor).toBe(1500);
      // Either way the coupon redeems for its amount.
      expect((await redeem(both.coupon.code, customer)).json().discount_minor).toBe(1500);
    });

    it('a program refuses a code_format whose {amount} could not fit a code at its largest conversion', async () => {
      // 20 random + 36 literal symbols + 11 digits for 10,000 points x 1,000,000 minor units > 64 symbols.
      const format = `{random20}${'A'.repeat(36)}{amount}`;
      const r = await t.call('POST', '/v1/points-programs', {
        key: t.keys.marketing,
        body: { name: unique('Too wide '), currency: 'JPY', minor_per_point: 1_000_000, code_format: format },
      });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json()).toMatchObject({ code: 'validation_failed' });
      expect(r.json().detail).toContain('code_format');
      // At 1 minor unit per point the largest amount has 5 digits and the same format fits.
      await createProgram({ code_format: format });
    });

    it.each(['platinum', 'Gold', 'GOLD', 'constructor'])(
      'a tier the program does not define (%s) is 422 unknown_tier naming the known tiers, and spends nothing',
      async (tier) => {
        const customer = unique('cus_tier_unknown_');
        await credit(customer, 1000);
        const before = await snapshot(t, customer);
        const r = await convert(customer, 100, { programId: boosted.id, tier });
        expect(r.statusCode, r.body).toBe(422);
        expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(r.json()).toMatchObject({ code: 'unknown_tier', tier, known_tiers: ['gold'] });
        expect(r.json().detail).toContain('gold');
        expect(await snapshot(t, customer)).toEqual(before);
      },
    );

    it('a program without tiers refuses any tier (422 unknown_tier, no known tiers) and converts without one', async () => {
      const customer = 'cus_tier_none';
      await credit(customer, 1000);
      const r = await convert(customer, 100, { tier: 'gold' });
      expect(r.statusCode, r.body).toBe(422);
      expect(r.json()).toMatchObject({ code: 'unknown_tier', known_tiers: [] });
      expect((await converted(customer, 100)).amount_minor).toBe(100);
    });

    it("a customer token's tier counts; the body's tier is ignored", async () => {
      const customer = 'cus_tier2';
      await credit(customer, 10_000);
      const goldToken = await token(customer, { tier: 'gold' });
      const a = await converted(customer, 1000, { programId: boosted.id, key: goldToken });
      expect(a.amount_minor).toBe(1800);
      const b = await converted(customer, 1000, { programId: boosted.id, key: goldToken, tier: 'platinum' });
      expect(b.amount_minor).toBe(1800);
      const plainToken = await token(customer);
      const c = await converted(customer, 1000, { programId: boosted.id, key: plainToken, tier: 'gold' });
      expect(c.amount_minor).toBe(1500);
      expect((await summary(customer)).balance).toBe(7000);
      // A token whose tier the program does not define is refused, whatever the body says.
      const platinumToken = await token(customer, { tier: 'platinum' });
      const d = await convert(customer, 1000, { programId: boosted.id, key: platinumToken, tier: 'gold' });
      expect(d.statusCode, d.body).toBe(422);
      expect(d.json()).toMatchObject({ code: 'unknown_tier', tier: 'platinum', known_tiers: ['gold'] });
      expect((await summary(customer)).balance).toBe(7000);
    });
  });

  describe('customer tokens', () => {
    it("read and convert their own customer's points until they expire (401 after the ttl)", async () => {
      const customer = 'cus_token1';
      await credit(customer, 1000);
      const issued = await t.call('POST', '/v1/customer-tokens', {
        key: t.keys.checkout,
        body: { customer_id: customer, ttl_seconds: 60 },
      });
      expect(issued.statusCode, issued.body).toBe(201);
      expect(issued.json().expires_at).toBe('2026-06-01T12:01:00.000Z');
      const tok = issued.json().token as string;
      expect(tok.startsWith('pgc_')).toBe(true);

      expect((await summary(customer, tok)).balance).toBe(1000);
      expect((await converted(customer, 100, { key: tok })).points).toBe(100);

      clock.advance(59_999);
      expect((await summary(customer, tok)).balance).toBe(900);
      clock.advance(1);
      for (const [method, url] of [
        ['GET', `/v1/customers/${customer}/points`],
        ['GET', `/v1/customers/${customer}/coupons`],
      ] as const) {
        const r = await t.call(method, url, { key: tok });
        expect(r.statusCode, r.body).toBe(401);
        expect(r.json().code).toBe('unauthorized');
        expect(r.headers['www-authenticate']).toBe('Bearer');
      }
      const late = await convert(customer, 100, { key: tok });
      expect(late.statusCode, late.body).toBe(401);
      expect((await snapshot(t, customer)).balance).toBe(900);
    });

    it('refuses a forged or tampered token (401) without acting', async () => {
      const customer = 'cus_token2';
      await credit(customer, 1000);
      const tok = await token(customer);
      const [payload, signature] = tok.slice('pgc_'.length).split('.') as [string, string];
      const flip = (s: string) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const longer = Buffer.from(JSON.stringify({ ...claims, e: claims.e + 86_400 })).toString('base64url');
      const otherCustomer = Buffer.from(JSON.stringify({ ...claims, c: 'cus_token2_other' })).toString(
        'base64url',
      );
      const withTier = Buffer.from(JSON.stringify({ ...claims, t: 'gold' })).toString('base64url');
      const foreignKey = createHmac('sha256', 'not the server secret').update(payload).digest('base64url');
      const forgeries = [
        `pgc_${payload}.${flip(signature)}`,
        `pgc_${payload}.${foreignKey}`,
        `pgc_${longer}.${signature}`,
        `pgc_${withTier}.${signature}`,
        `pgc_${payload}.`,
        `pgc_${payload}`,
        `pgc_${payload}.${signature}.${signature}`,
        'pgc_',
      ];
      for (const forged of forgeries) {
        const r = await t.call('GET', `/v1/customers/${customer}/points`, { key: forged });
        expect(r.statusCode, forged).toBe(401);
        const c = await convert(customer, 100, { key: forged });
        expect(c.statusCode, forged).toBe(401);
      }
      const stolen = await t.call('GET', '/v1/customers/cus_token2_other/points', {
        key: `pgc_${otherCustomer}.${signature}`,
      });
      expect(stolen.statusCode).toBe(401);
      expect((await snapshot(t, customer)).balance).toBe(1000);
      expect((await snapshot(t, customer)).codes).toEqual([]);
    });

    it("is 403 on another customer's path and on every route that is not the customer's own", async () => {
      const customer = 'cus_token3';
      const victim = 'cus_token3_victim';
      await credit(customer, 1000);
      await credit(victim, 1000);
      const tok = await token(customer);
      for (const [method, url, body] of [
        ['GET', `/v1/customers/${victim}/points`, undefined],
        ['GET', `/v1/customers/${victim}/coupons`, undefined],
        ['POST', `/v1/customers/${victim}/conversions`, { program_id: program.id, points: 100 }],
        ['GET', '/v1/campaigns', undefined],
        ['GET', '/v1/points-programs', undefined],
        [
          'POST',
          `/v1/customers/${customer}/points`,
          { type: 'credit', points: 1000, reason: 'self-service' },
        ],
        ['POST', '/v1/customer-tokens', { customer_id: victim }],
        ['POST', '/v1/redemptions', checkoutBody('ANYCODE', { customer: { id: customer } })],
      ] as const) {
        const r = await t.call(method, url, {
          key: tok,
          headers: { 'idempotency-key': unique('k-') },
          ...(body === undefined ? {} : { body }),
        });
        expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(403);
        expect(r.json().code).toBe('forbidden');
      }
      expect((await snapshot(t, victim)).balance).toBe(1000);
      expect((await snapshot(t, victim)).codes).toEqual([]);
      expect((await snapshot(t, customer)).balance).toBe(1000);
    });

    it('are issued only to checkout keys', async () => {
      const r = await t.call('POST', '/v1/customer-tokens', {
        key: t.keys.marketing,
        body: { customer_id: 'cus_token4' },
      });
      expect(r.statusCode).toBe(403);
    });
  });

  describe('events', () => {
    it('points.credited and points.converted reach the bus after the relay drains', async () => {
      const customer = 'cus_events1';
      const events: DomainEvent[] = [];
      const unsubscribe = t.app.bus.subscribe((e) => {
        if (e.aggregateId === customer) events.push(e);
      });
      try {
        await credit(customer, 1000);
        const conversion = await converted(customer, 500);
        const refused = await convert(customer, 5000);
        expect(refused.statusCode).toBe(422);
        await deliveredEvents(
          events,
          (e) => e.type === 'points.credited' || e.type === 'points.converted',
          2,
        );
        // Nothing more arrives for this customer (the refusal wrote no event).
        await t.app.relay.drain();
        const delivered = [...new Map(events.map((e) => [e.id, e])).values()];
        expect(delivered.map((e) => e.type)).toEqual(['points.credited', 'points.converted']);
        expect(delivered[0]?.payload).toMatchObject({
          movement: { customer_id: customer, kind: 'credit', points: 1000, balance_after: 1000 },
        });
        expect(delivered[1]?.payload).toMatchObject({
          conversion: { id: conversion.id, customer_id: customer, points: 500, amount_minor: 500 },
        });
      } finally {
        unsubscribe();
      }
    });
  });
});
