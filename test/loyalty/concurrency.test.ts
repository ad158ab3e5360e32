/**
 * Points under concurrent requests: the balance, the daily conversion limit and idempotency keys.
 *
 * Requests are fired at once (Promise.all over Fastify inject). On PGlite the driver serialises
 * statements, so those runs check the logic under interleaved requests; the PostgreSQL run
 * (TEST_DATABASE_URL) is the one that proves the caps are atomic with real concurrent transactions.
 * Where an outcome depends on one particular interleaving, the test forces that interleaving with a
 * gate in front of the database instead of hoping for it, so it is deterministic on both backends.
 *
 * After every scenario the customer's rows are reconciled straight from the tables.
 */
import type { LightMyRequestResponse } from 'fastify';
import { type CompiledQuery, type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PatternIndex } from '../../src/services/code-patterns.js';
import { CodeService } from '../../src/services/codes.js';
import { PointsService } from '../../src/services/points.js';
import type { Database } from '../../src/store/schema.js';
import { startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const START = '2026-06-01T12:00:00.000Z';

interface Program {
  id: string;
  campaign_id: string;
}

/** Status codes and error codes of a batch of responses, e.g. {201: 3, insufficient_points: 17}. */
function tally(responses: LightMyRequestResponse[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of responses) {
    const label =
      r.statusCode === 201
        ? '201'
        : r.statusCode === 422
          ? String(r.json().code)
          : `${r.statusCode} ${r.body}`;
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

/**
 * The customer's points rows agree with each other:
 * - the balance is the sum of the movements, and every movement's balance_after is the running sum
 *   in id order (so the last one is the balance, and none was ever below zero);
 * - each conversion has one conversion movement of minus its points, and one code bound to the
 *   customer in the program's campaign;
 * - points_daily holds, per UTC day, exactly the points converted that day.
 */
async function expectConsistent(t: TestApp, customerId: string, program: Program): Promise<number> {
  const db = t.app.db;
  const account = await sql<{ balance: string }>`
    SELECT balance::text AS balance FROM points_accounts WHERE customer_id = ${customerId}`.execute(db);
  const balance = Number(account.rows[0]?.balance ?? 0);
  const movements = await sql<{
    kind: string;
    points: string;
    balance_after: string;
    conversion_id: string | null;
  }>`
    SELECT kind, points::text AS points, balance_after::text AS balance_after, conversion_id
      FROM points_movements WHERE customer_id = ${customerId} ORDER BY id`.execute(db);
  let running = 0;
  for (const m of movements.rows) {
    running += Number(m.points);
    expect(running, JSON.stringify(m)).toBeGreaterThanOrEqual(0);
    expect(Number(m.balance_after), JSON.stringify(m)).toBe(running);
  }
  expect(running).toBe(balance);
  const last = movements.rows[movements.rows.length - 1];
  if (last) expect(Number(last.balance_after)).toBe(balance);

  const conversions = await sql<{ id: string; points: string; code_id: string }>`
    SELECT id, points::text AS points, code_id FROM conversions
     WHERE customer_id = ${customerId} AND program_id = ${program.id} ORDER BY id`.execute(db);
  const codes = await sql<{ id: string }>`
    SELECT id FROM codes WHERE customer_id = ${customerId} AND campaign_id = ${program.campaign_id}
     ORDER BY id`.execute(db);
  expect(codes.rows.map((c) => c.id).sort()).toEqual(conversions.rows.map((c) => c.code_id).sort());
  const conversionMovements = movements.rows.filter((m) => m.kind === 'conversion');
  expect(conversionMovements).toHaveLength(conversions.rows.length);
  for (const c of conversions.rows) {
    expect(conversionMovements.filter((m) => m.conversion_id === c.id).map((m) => Number(m.points))).toEqual([
      -Number(c.points),
    ]);
  }

  const daily = await sql<{ utc_day: string; points: string }>`
    SELECT utc_day::text AS utc_day, points::text AS points FROM points_daily
     WHERE customer_id = ${customerId} ORDER BY utc_day`.execute(db);
  const convertedPerDay = await sql<{ utc_day: string; points: string }>`
    SELECT utc_day::text AS utc_day, sum(points)::text AS points FROM conversions
     WHERE customer_id = ${customerId} GROUP BY utc_day ORDER BY utc_day`.execute(db);
  expect(daily.rows).toEqual(convertedPerDay.rows);
  return balance;
}

/**
 * The same database, except that the first query whose SQL matches `matches` waits, after its result
 * has arrived and its connection is released, until `pause` resolves: a request served through it stops
 * at that exact point. The copy gets an executor of its own (withPlugin makes one), which every query
 * of the copy, built or raw, runs through.
 */
function gateAfter(db: Kysely<Database>, matches: RegExp, pause: () => Promise<void>): Kysely<Database> {
  let armed = true;
  const copy = db.withPlugin({
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => result,
  });
  const executor = copy.getExecutor();
  const run = executor.executeQuery.bind(executor);
  executor.executeQuery = async <R>(compiled: CompiledQuery<R>) => {
    const result = await run(compiled);
    if (armed && matches.test(compiled.sql)) {
      armed = false;
      await pause();
    }
    return result;
  };
  return copy;
}

describe.each(backends.map((b) => [b.name, b] as const))('points concurrency on %s', (_name, backend) => {
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

  function pointsChange(customerId: string, type: 'credit' | 'debit', amount: number, key = unique('pts-')) {
    return t.call('POST', `/v1/customers/${customerId}/points`, {
      key: t.keys.checkout,
      body: { type, points: amount, reason: `${type} ${amount}` },
      headers: { 'idempotency-key': key },
    });
  }

  async function credit(customerId: string, amount: number): Promise<void> {
    const r = await pointsChange(customerId, 'credit', amount);
    expect(r.statusCode, r.body).toBe(201);
  }

  function convert(customerId: string, amount: number, key = unique('conv-'), programId = program.id) {
    return t.call('POST', `/v1/customers/${customerId}/conversions`, {
      key: t.keys.checkout,
      body: { program_id: programId, points: amount },
      headers: { 'idempotency-key': key },
    });
  }

  it('20 conversions of 1,000 at a balance of 3,000: exactly 3 succeed, 17 are insufficient_points', async () => {
    const customer = 'cus_conc_balance';
    await credit(customer, 3000);
    const responses = await Promise.all(Array.from({ length: 20 }, () => convert(customer, 1000)));
    expect(tally(responses)).toEqual({ '201': 3, insufficient_points: 17 });
    const codes = responses.filter((r) => r.statusCode === 201).map((r) => r.json().coupon.code as string);
    expect(new Set(codes).size).toBe(3);
    expect(await expectConsistent(t, customer, program)).toBe(0);
  });

  it('10 conversions of 10,000 with a large balance: never more than 30,000 that UTC day (exactly 3)', async () => {
    const customer = 'cus_conc_daily';
    await credit(customer, 200_000);
    const responses = await Promise.all(Array.from({ length: 10 }, () => convert(customer, 10_000)));
    expect(tally(responses)).toEqual({ '201': 3, daily_conversion_limit_exceeded: 7 });
    expect(await expectConsistent(t, customer, program)).toBe(170_000);
    const today = await t.call('GET', `/v1/customers/${customer}/points`, { key: t.keys.checkout });
    expect(today.json()).toMatchObject({ balance: 170_000, converted_today: 30_000 });
  });

  it('a day already at 25,000 admits at most 5,000 more from 30 concurrent conversions of 100..1,000', async () => {
    const customer = 'cus_conc_daily_mixed';
    await credit(customer, 100_000);
    for (const amount of [10_000, 10_000, 5_000])
      expect((await convert(customer, amount)).statusCode).toBe(201);
    const amounts = Array.from({ length: 30 }, (_, i) => ((i % 10) + 1) * 100);
    const responses = await Promise.all(amounts.map((a) => convert(customer, a)));
    const admitted = responses
      .filter((r) => r.statusCode === 201)
      .reduce((sum, r) => sum + r.json().points, 0);
    for (const r of responses)
      if (r.statusCode !== 201) expect(r.json().code).toBe('daily_conversion_limit_exceeded');
    expect(admitted).toBeLessThanOrEqual(5_000);
    // Every refused amount would have passed the limit at the end: none was refused while room remained.
    const smallestRefused = Math.min(
      ...responses.map((r, i) => (r.statusCode === 201 ? Number.POSITIVE_INFINITY : (amounts[i] as number))),
    );
    expect(25_000 + admitted + smallestRefused).toBeGreaterThan(30_000);
    expect(await expectConsistent(t, customer, program)).toBe(100_000 - 25_000 - admitted);
  });

  it('20 concurrent repeats of one idempotency key make one conversion with identical answers', async () => {
    const customer = 'cus_conc_idem';
    await credit(customer, 5000);
    const key = unique('conv-');
    const responses = await Promise.all(Array.from({ length: 20 }, () => convert(customer, 1000, key)));
    expect(tally(responses)).toEqual({ '201': 20 });
    const bodies = new Set(responses.map((r) => r.body));
    expect(bodies.size).toBe(1);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(19);
    expect(await expectConsistent(t, customer, program)).toBe(4000);
    const conversions = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM conversions WHERE customer_id = ${customer}`.execute(t.app.db);
    expect(conversions.rows[0]?.n).toBe(1);
  });

  /*
   * A repeat that looked its key up before the first request committed, and reads the balance and
   * the day's total after it did, must still answer with the first result: that is what the key
   * promises. The gate stops the repeat right after its key lookup found nothing, lets the first
   * request run to completion, then lets the repeat go on.
   */
  describe('a repeat overlapping the first request of its key', () => {
    async function repeatAcrossFirst(customer: string, amount: number, key: string) {
      let reached!: () => void;
      const atGate = new Promise<void>((resolve) => {
        reached = resolve;
      });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const db = gateAfter(
        t.app.db,
        /from "conversions" where "customer_id" = \$\d+ and "idempotency_key"/,
        async () => {
          reached();
          await gate;
        },
      );
      const ctx = { db, clock, afterCommit: () => {} };
      const patterns = new PatternIndex(CodeService.patternLoader(ctx));
      await patterns.refresh();
      const repeatingNode = new PointsService(ctx, patterns);
      const repeat = repeatingNode.convert(customer, { programId: program.id, points: amount }, key).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      await atGate;
      const first = await convert(customer, amount, key);
      release();
      return { first, repeat: await repeat };
    }

    it('returns the first conversion when that one spent the whole balance', async () => {
      const customer = 'cus_conc_idem_balance';
      await credit(customer, 1000);
      const key = unique('conv-');
      const { first, repeat } = await repeatAcrossFirst(customer, 1000, key);
      expect(first.statusCode, first.body).toBe(201);
      expect(repeat.ok ? 'replayed' : (repeat.error as { code?: string }).code).toBe('replayed');
      if (repeat.ok) {
        expect(repeat.value.replayed).toBe(true);
        expect(repeat.value.conversion.id).toBe(first.json().id);
        expect(repeat.value.code.code).toBe(first.json().coupon.code);
      }
      expect(await expectConsistent(t, customer, program)).toBe(0);
    });

    it("returns the first conversion when that one reached the day's limit", async () => {
      const customer = 'cus_conc_idem_daily';
      await credit(customer, 100_000);
      for (const amount of [10_000, 10_000]) expect((await convert(customer, amount)).statusCode).toBe(201);
      const key = unique('conv-');
      const { first, repeat } = await repeatAcrossFirst(customer, 10_000, key);
      expect(first.statusCode, first.body).toBe(201);
      expect(repeat.ok ? 'replayed' : (repeat.error as { code?: string }).code).toBe('replayed');
      if (repeat.ok) expect(repeat.value.conversion.id).toBe(first.json().id);
      expect(await expectConsistent(t, customer, program)).toBe(70_000);
    });
  });

  it('20 concurrent repeats of one credit key apply it once', async () => {
    const customer = 'cus_conc_credit_idem';
    const key = unique('earn-');
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => pointsChange(customer, 'credit', 700, key)),
    );
    expect(tally(responses)).toEqual({ '201': 20 });
    expect(new Set(responses.map((r) => r.body)).size).toBe(1);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(19);
    expect(await expectConsistent(t, customer, program)).toBe(700);
  });

  it('concurrent credits and debits with distinct keys end at the exact balance', async () => {
    const customer = 'cus_conc_mixed';
    await credit(customer, 10_000);
    const requests = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? pointsChange(customer, 'credit', 100) : pointsChange(customer, 'debit', 300),
    );
    const responses = await Promise.all(requests);
    expect(tally(responses)).toEqual({ '201': 40 });
    expect(await expectConsistent(t, customer, program)).toBe(10_000 + 20 * 100 - 20 * 300);
  });

  it('concurrent debits never take the balance below zero', async () => {
    const customer = 'cus_conc_overdraw';
    await credit(customer, 1000);
    const responses = await Promise.all(
      Array.from({ length: 25 }, () => pointsChange(customer, 'debit', 100)),
    );
    expect(tally(responses)).toEqual({ '201': 10, insufficient_points: 15 });
    expect(await expectConsistent(t, customer, program)).toBe(0);
  });

  it('concurrent conversions, debits and credits share one balance that never goes below zero', async () => {
    const customer = 'cus_conc_all';
    await credit(customer, 5000);
    const responses = await Promise.all([
      ...Array.from({ length: 10 }, () => convert(customer, 1000)),
      ...Array.from({ length: 10 }, () => pointsChange(customer, 'debit', 500)),
    ]);
    for (const r of responses) if (r.statusCode !== 201) expect(r.json().code).toBe('insufficient_points');
    const spent = responses
      .filter((r) => r.statusCode === 201)
      .reduce((sum, r) => sum + (r.json().points ?? -r.json().movement.points), 0);
    expect(spent).toBe(5000);
    // Every amount is a multiple of 500 and the demand exceeds the balance, so it ends at exactly zero.
    expect(await expectConsistent(t, customer, program)).toBe(0);
  });

  it('the expiry refund job running on several nodes at once refunds each coupon once', async () => {
    const created = await t.call('POST', '/v1/points-programs', {
      key: t.keys.marketing,
      body: { name: 'Refunding', currency: 'JPY', refund_on_expiry: true, validity_months: 1 },
    });
    expect(created.statusCode, created.body).toBe(201);
    const refunding: Program = created.json();
    const customer = 'cus_conc_refund';
    await credit(customer, 3000);
    for (const amount of [500, 1000, 1500])
      expect((await convert(customer, amount, unique('conv-'), refunding.id)).statusCode).toBe(201);
    // One minute past expiry: the refund's grace for clocks that disagree.
    clock.set('2026-07-01T12:01:00.000Z');
    const counts = await Promise.all(Array.from({ length: 5 }, () => t.app.points.refundExpired()));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(3);
    expect(await t.app.points.refundExpired()).toBe(0);
    expect(await expectConsistent(t, customer, refunding)).toBe(3000);
    const refunds = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM points_movements
       WHERE customer_id = ${customer} AND kind = 'expiry_refund'`.execute(t.app.db);
    expect(refunds.rows[0]?.n).toBe(3);
  });
});
