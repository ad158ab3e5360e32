/**
 * The database functions and triggers of src/store/sql, called directly on both stores: every
 * refusal of the atomic redeem statement (and that a refusal changes nothing), replays, rollback
 * once, reviews, points and conversions, expiry refunds, the shape guard, the immutable ledgers and
 * the outbox pass. Also what holds the TypeScript side to the SQL: each typed call declaration
 * against the function's signature in the database, the refusal list against redeem.sql, the
 * advisory-lock names, and the list of routines against the files.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { CompiledQuery, type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATOMIC_REFUSALS } from '../../src/domain/campaign.js';
import { CODE_ALPHABET, checkCharacter, hasValidCheckCharacter } from '../../src/domain/codes.js';
import { newId } from '../../src/lib/ids.js';
import { ADVISORY_LOCKS } from '../../src/store/locks.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import { OUTBOX_PASS } from '../../src/store/outbox.js';
import { CONVERT, POINTS_APPLY, REFUND_EXPIRED } from '../../src/store/points.js';
import { CONTEXT } from '../../src/store/redemption-context.js';
import { REDEEM, type RedeemParams, ROLLBACK, redeemArgs } from '../../src/store/redemptions.js';
import { REVIEW } from '../../src/store/risk.js';
import { ROUTINES, routineText, SQL_DIR } from '../../src/store/routines.js';
import type { Database } from '../../src/store/schema.js';
import { backends } from '../support/backends.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const DECLARATIONS: { name: string; params: object }[] = [
  REDEEM,
  ROLLBACK,
  CONTEXT,
  OUTBOX_PASS,
  REVIEW,
  POINTS_APPLY,
  CONVERT,
  REFUND_EXPIRED,
];

/** The refusal reasons redeem.sql can raise: the literals a RAISE … MESSAGE expression yields. */
function refusalsInRedeemSql(): string[] {
  const text = routineText('functions/redeem');
  const raises = text.match(/RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = [^;]*;/g) ?? [];
  const yielded = raises.flatMap((r) =>
    [...r.matchAll(/(?:MESSAGE =|THEN|ELSE)\s*'([a-z_]+)'/g)].map((m) => m[1] as string),
  );
  return [...new Set(yielded)].sort();
}

describe('the SQL files and their TypeScript side', () => {
  it('lists every .sql file of sql/ as a routine, and only those', () => {
    const files = ['functions', 'triggers'].flatMap((dir) =>
      readdirSync(`${SQL_DIR}${dir}`)
        .filter((f) => f.endsWith('.sql'))
        .map((f) => `${dir}/${f.slice(0, -4)}`),
    );
    expect([...ROUTINES].sort()).toEqual(files.sort());
  });

  it('holds the refusal reasons of redeem.sql equal to the domain list ATOMIC_REFUSALS', () => {
    expect(refusalsInRedeemSql()).toEqual([...ATOMIC_REFUSALS].sort());
  });

  it('names every advisory lock the SQL takes in ADVISORY_LOCKS', () => {
    const used = ROUTINES.flatMap((name) =>
      [...routineText(name).matchAll(/hashtextextended\('(promoguard:[a-z_]+)', 0\)/g)].map((m) => m[1]),
    );
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(Object.values(ADVISORY_LOCKS)).toContain(name);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('database functions on %s', (_name, backend) => {
  let db: Kysely<Database>;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const opened = await backend.open<Database>();
    db = opened.db;
    close = () => opened.close();
    await migrateToLatest(db as Kysely<unknown>);
  });
  afterAll(async () => close?.());

  const call = async <T>(fn: { sql: string }, values: unknown[]): Promise<T> => {
    const { rows } = await db.executeQuery<{ result: unknown }>(CompiledQuery.raw(fn.sql, values));
    const result = rows[0]?.result;
    return (typeof result === 'string' ? JSON.parse(result) : result) as T;
  };

  let seq = 0;
  const uid = (prefix: string) => `${prefix}${++seq}${randomBytes(3).toString('hex')}`.toUpperCase();

  async function campaign(fields: Record<string, unknown> = {}) {
    const id = newId('campaign');
    await db
      .insertInto('campaigns')
      .values({
        id,
        name: 'sql test',
        status: 'active',
        currency: 'USD',
        discount_type: 'fixed_amount',
        amount_minor: 500,
        starts_at: new Date('2020-01-01T00:00:00Z'),
        eligibility: '{}',
        metadata: '{}',
        updated_at: NOW,
        ...(fields as object),
      })
      .execute();
    return id;
  }

  async function code(campaignId: string, fields: Record<string, unknown> = {}) {
    const id = newId('code');
    const text = uid('SQLT');
    await db
      .insertInto('codes')
      .values({ id, campaign_id: campaignId, code: text, normalized: text, kind: 'public', ...fields })
      .execute();
    return id;
  }

  async function version(campaignId: string): Promise<number> {
    const row = await db
      .selectFrom('campaigns')
      .select('version')
      .where('id', '=', campaignId)
      .executeTakeFirst();
    return row?.version ?? 0;
  }

  function params(campaignId: string, codeId: string, over: Partial<RedeemParams> = {}): RedeemParams {
    return {
      id: newId('redemption'),
      eventId: newId('event'),
      idempotencyKey: uid('key'),
      fingerprint: 'fp',
      codeId,
      campaignId,
      campaignVersion: 1,
      customerId: uid('cus'),
      orderId: null,
      currency: 'USD',
      subtotalMinor: 10_000,
      discountMinor: 500,
      now: NOW,
      perCustomerCap: null,
      perPersonCap: null,
      throttlePerMinute: null,
      partner: null,
      personCandidate: newId('person'),
      identityKeys: [],
      context: null,
      decision: null,
      review: false,
      ...over,
    };
  }

  type RedeemResult = { outcome: string; reason?: string; redemption?: { id: string; status: string } };
  const redeem = (p: RedeemParams) => call<RedeemResult>(REDEEM, redeemArgs(p));

  /** Every counter and row a redemption can move, for "a refusal changes nothing". */
  async function state(campaignId: string) {
    const c = await db
      .selectFrom('campaigns')
      .select(['redemptions_used', 'spent_minor'])
      .where('id', '=', campaignId)
      .executeTakeFirstOrThrow();
    const count = async (table: 'redemptions' | 'ledger_entries' | 'customer_usage' | 'person_usage') =>
      Number(
        (
          await db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('campaign_id', '=', campaignId)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const uses = await db
      .selectFrom('codes')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('uses'), eb.lit(0)).as('n'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    const usage = await db
      .selectFrom('customer_usage')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('uses'), eb.lit(0)).as('n'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    return {
      used: c.redemptions_used,
      spent: Number(c.spent_minor),
      codeUses: Number(uses.n),
      customerUses: Number(usage.n),
      redemptions: await count('redemptions'),
      ledger: await count('ledger_entries'),
    };
  }

  it('holds every typed call declaration equal to its function signature in the database', async () => {
    for (const fn of DECLARATIONS) {
      const { rows } = await sql<{ names: string[]; types: string[] }>`
        SELECT p.proargnames AS names,
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) AS t) AS types
          FROM pg_proc p WHERE p.proname = ${fn.name}`.execute(db);
      expect(rows, fn.name).toHaveLength(1);
      const row = rows[0] as { names: string[]; types: string[] };
      const declared = Object.entries(fn.params as Record<string, string>).map(([k, t]) => [
        `p_${k}`,
        t.replace('?', '').replace('timestamptz', 'timestamp with time zone'),
      ]);
      const actual = row.types.map((t, i) => [row.names[i], t]);
      expect(actual, fn.name).toEqual(declared);
    }
  });

  it('redeems once: counters, ledger pair and event move together; a repeat of the key replays', async () => {
    const cmp = await campaign({ redemption_cap: 10, budget_minor: 100_000 });
    const codeId = await code(cmp);
    const p = params(cmp, codeId);
    const first = await redeem(p);
    expect(first.outcome).toBe('redeemed');
    expect(await state(cmp)).toEqual({
      used: 1,
      spent: 500,
      codeUses: 1,
      customerUses: 1,
      redemptions: 1,
      ledger: 2,
    });
    const ledger = await db
      .selectFrom('ledger_entries')
      .select(['account', 'amount_minor'])
      .where('campaign_id', '=', cmp)
      .orderBy('account')
      .execute();
    expect(ledger).toEqual([
      { account: 'campaign_budget', amount_minor: -500 },
      { account: 'promo_expense', amount_minor: 500 },
    ]);
    const event = await db
      .selectFrom('outbox')
      .select(['type', 'aggregate_id'])
      .where('id', '=', p.eventId)
      .executeTakeFirst();
    expect(event).toEqual({ type: 'redemption.created', aggregate_id: p.id });
    const again = await redeem({ ...p, id: newId('redemption'), eventId: newId('event') });
    expect(again.outcome).toBe('replayed');
    expect(again.redemption?.id).toBe(p.id);
    expect((await state(cmp)).used).toBe(1);
  });

  it('links the person before writing the redemption; a replay of the key links nothing', async () => {
    const cmp = await campaign({});
    const p = params(cmp, await code(cmp), { identityKeys: [] });
    p.identityKeys = [`customer:${p.customerId}`, `device:${uid('dev')}`];
    const first = await redeem(p);
    expect(first.outcome).toBe('redeemed');
    const row = await db
      .selectFrom('redemptions')
      .select('person_id')
      .where('id', '=', p.id)
      .executeTakeFirst();
    expect(row?.person_id).toBe(p.personCandidate);
    const usage = () =>
      db.selectFrom('person_usage').select(['person_id', 'uses']).where('campaign_id', '=', cmp).execute();
    expect(await usage()).toEqual([{ person_id: p.personCandidate, uses: 1 }]);
    // The repeat carries an identifier never seen: its node and edge would be written before the row.
    const unseen = `device:${uid('dev')}`;
    const again = await redeem({
      ...p,
      id: newId('redemption'),
      eventId: newId('event'),
      personCandidate: newId('person'),
      identityKeys: [...p.identityKeys, unseen],
    });
    expect(again.outcome).toBe('replayed');
    expect(again.redemption?.id).toBe(p.id);
    expect(await db.selectFrom('identity_nodes').select('key').where('key', '=', unseen).execute()).toEqual(
      [],
    );
    expect(
      await db
        .selectFrom('identity_edges')
        .select('customer_id')
        .where('identifier_key', '=', unseen)
        .execute(),
    ).toEqual([]);
    expect(await usage()).toEqual([{ person_id: p.personCandidate, uses: 1 }]);
  });

  it('20 concurrent calls with one key redeem once; the others answer that redemption and leave no links', async () => {
    const cmp = await campaign({});
    const codeId = await code(cmp);
    const base = params(cmp, codeId);
    const devices = Array.from({ length: 20 }, () => `device:${uid('dev')}`);
    const calls = devices.map((device) =>
      redeem({
        ...base,
        id: newId('redemption'),
        eventId: newId('event'),
        personCandidate: newId('person'),
        identityKeys: [`customer:${base.customerId}`, device],
      }),
    );
    const results = await Promise.all(calls);
    const redeemed = results.filter((r) => r.outcome === 'redeemed');
    expect(redeemed).toHaveLength(1);
    const id = redeemed[0]?.redemption?.id;
    for (const r of results) {
      expect(r.outcome === 'redeemed' || r.outcome === 'replayed').toBe(true);
      expect(r.redemption?.id).toBe(id);
    }
    expect(await state(cmp)).toMatchObject({ used: 1, codeUses: 1, customerUses: 1, redemptions: 1 });
    // Only the winner's device was linked: every other call's linking was undone with its attempt.
    const linked = await db.selectFrom('identity_nodes').select('key').where('key', 'in', devices).execute();
    expect(linked).toHaveLength(1);
    const uses = await db
      .selectFrom('person_usage')
      .select((eb) => eb.fn.sum<number>('uses').as('uses'))
      .where('campaign_id', '=', cmp)
      .executeTakeFirst();
    expect(Number(uses?.uses)).toBe(1);
  });

  /** Each refusal with the setup that provokes it; `prior` redemptions are made first. */
  const refusals: {
    reason: (typeof ATOMIC_REFUSALS)[number];
    campaign?: Record<string, unknown>;
    code?: Record<string, unknown>;
    over?: (ids: { cmp: string; codeId: string }) => Promise<Partial<RedeemParams>>;
    prior?: number;
    priorSameCustomer?: boolean;
  }[] = [
    { reason: 'code_revoked', code: { status: 'revoked' } },
    { reason: 'code_expired', code: { expires_at: new Date('2026-06-01T11:59:59Z') } },
    { reason: 'code_used_up', code: { max_uses: 1, kind: 'unique' }, prior: 1 },
    { reason: 'campaign_paused', campaign: { status: 'paused' } },
    { reason: 'campaign_ended', campaign: { status: 'ended' } },
    { reason: 'campaign_not_active', campaign: { status: 'draft' } },
    { reason: 'campaign_changed' },
    { reason: 'campaign_not_started', campaign: { starts_at: new Date('2026-06-01T12:00:01Z') } },
    { reason: 'campaign_expired', campaign: { ends_at: NOW } },
    { reason: 'campaign_cap_reached', campaign: { redemption_cap: 1 }, prior: 1 },
    { reason: 'budget_exhausted', campaign: { budget_minor: 700 }, prior: 1 },
    {
      reason: 'customer_cap_reached',
      prior: 1,
      priorSameCustomer: true,
      over: async () => ({ perCustomerCap: 1 }),
    },
    {
      reason: 'person_cap_reached',
      prior: 1,
      over: async () => ({ perPersonCap: 1, identityKeys: ['payment:shared-card'] }),
    },
    {
      reason: 'partner_cap_reached',
      code: { partner: 'acme' },
      over: async ({ cmp }) => {
        await db.insertInto('partner_caps').values({ campaign_id: cmp, partner: 'acme', cap: 0 }).execute();
        return { partner: 'acme' };
      },
    },
    { reason: 'campaign_throttled', prior: 1, over: async () => ({ throttlePerMinute: 1 }) },
  ];

  it('covers every atomic refusal in the table below', () => {
    expect(refusals.map((r) => r.reason).sort()).toEqual([...ATOMIC_REFUSALS].sort());
  });

  for (const r of refusals) {
    it(`refuses with ${r.reason} and changes nothing`, async () => {
      const cmp = await campaign(r.campaign ?? {});
      const codeId = await code(cmp, r.code ?? {});
      const over = r.over ? await r.over({ cmp, codeId }) : {};
      if (r.reason === 'campaign_changed') {
        await db
          .updateTable('campaigns')
          .set((eb) => ({ version: eb('version', '+', 1) }))
          .where('id', '=', cmp)
          .execute();
      }
      const customerId = uid('cus');
      for (let i = 0; i < (r.prior ?? 0); i++) {
        // The prior redemptions are made while the campaign still allows them.
        const prior = await redeem(
          params(cmp, codeId, {
            ...over,
            campaignVersion: await version(cmp),
            ...(r.priorSameCustomer ? { customerId } : {}),
          }),
        );
        expect(prior.outcome, JSON.stringify(prior)).toBe('redeemed');
      }
      const before = await state(cmp);
      // A stale version for campaign_changed; the current one for every other case.
      const campaignVersion = r.reason === 'campaign_changed' ? 1 : await version(cmp);
      const refused = await redeem(params(cmp, codeId, { ...over, campaignVersion, customerId }));
      expect(refused).toEqual({ outcome: 'refused', reason: r.reason });
      expect(await state(cmp)).toEqual(before);
    });
  }

  it('rolls back exactly once: counters restored, a reversing ledger pair, a second call finds it done', async () => {
    const cmp = await campaign();
    const codeId = await code(cmp, { max_uses: 1, kind: 'unique' });
    const p = params(cmp, codeId);
    expect((await redeem(p)).outcome).toBe('redeemed');
    const rollback = (eventId: string) =>
      call<{ outcome: string }>(
        ROLLBACK,
        ROLLBACK.values({ id: p.id, event_id: eventId, reason: 'test', now: NOW.toISOString() }),
      );
    const [a, b] = await Promise.all([rollback(newId('event')), rollback(newId('event'))]);
    expect([a.outcome, b.outcome].sort()).toEqual(['already_rolled_back', 'rolled_back']);
    expect(await state(cmp)).toEqual({
      used: 0,
      spent: 0,
      codeUses: 0,
      customerUses: 0,
      redemptions: 1,
      ledger: 4,
    });
    const missing = await call<{ outcome: string }>(
      ROLLBACK,
      ROLLBACK.values({
        id: newId('redemption'),
        event_id: newId('event'),
        reason: null,
        now: NOW.toISOString(),
      }),
    );
    expect(missing.outcome).toBe('not_found');
  });

  it('refuses to update or delete ledger entries and points movements', async () => {
    const cmp = await campaign();
    expect((await redeem(params(cmp, await code(cmp)))).outcome).toBe('redeemed');
    await expect(
      sql`UPDATE ledger_entries SET amount_minor = 0 WHERE campaign_id = ${cmp}`.execute(db),
    ).rejects.toThrow(/immutable/);
    await expect(sql`DELETE FROM ledger_entries WHERE campaign_id = ${cmp}`.execute(db)).rejects.toThrow(
      /immutable/,
    );
    const customer = uid('cus');
    await call(
      POINTS_APPLY,
      POINTS_APPLY.values({
        customer_id: customer,
        kind: 'credit',
        points: 100,
        reason: 'r',
        key: 'k1',
        fingerprint: 'f',
        event_id: newId('event'),
        now: NOW.toISOString(),
      }),
    );
    await expect(
      sql`UPDATE points_movements SET points = 1 WHERE customer_id = ${customer}`.execute(db),
    ).rejects.toThrow(/immutable/);
  });

  it('decides a held redemption once: a rejection rolls it back and labels its decision', async () => {
    const cmp = await campaign();
    const p = params(cmp, await code(cmp), {
      review: true,
      decision: { action: 'review', rules: [] },
    });
    expect((await redeem(p)).outcome).toBe('redeemed');
    const review = (verdict: string) =>
      call<{ outcome: string; redemption?: { status: string; review_status: string } }>(
        REVIEW,
        REVIEW.values({
          id: p.id,
          verdict,
          label: 'abuse',
          note: null,
          actor: 'analyst',
          event_id: newId('event'),
          rollback_event_id: newId('event'),
          now: NOW.toISOString(),
        }),
      );
    const rejected = await review('reject');
    expect(rejected.outcome).toBe('reviewed');
    expect(rejected.redemption).toMatchObject({ status: 'rolled_back', review_status: 'rejected' });
    expect((await review('reject')).outcome).toBe('already_reviewed');
    expect((await state(cmp)).used).toBe(0);
    const label = await db
      .selectFrom('risk_labels')
      .select('label')
      .where('decision_id', '=', `dec_${p.id.slice(4)}`)
      .executeTakeFirst();
    expect(label).toEqual({ label: 'abuse' });
    const plain = params(cmp, await code(cmp));
    expect((await redeem(plain)).outcome).toBe('redeemed');
    const notHeld = await call<{ outcome: string }>(
      REVIEW,
      REVIEW.values({
        id: plain.id,
        verdict: 'approve',
        label: 'legitimate',
        note: null,
        actor: 'analyst',
        event_id: newId('event'),
        rollback_event_id: newId('event'),
        now: NOW.toISOString(),
      }),
    );
    expect(notHeld.outcome).toBe('not_under_review');
  });

  it('applies points once per key, and refuses a debit beyond the balance', async () => {
    const customer = uid('cus');
    const apply = (kind: string, points: number, key: string) =>
      call<{ outcome: string; reason?: string; movement?: { balance_after: number } }>(
        POINTS_APPLY,
        POINTS_APPLY.values({
          customer_id: customer,
          kind,
          points,
          reason: 'r',
          key,
          fingerprint: 'f',
          event_id: newId('event'),
          now: NOW.toISOString(),
        }),
      );
    expect(await apply('credit', 300, 'a')).toMatchObject({
      outcome: 'applied',
      movement: { balance_after: 300 },
    });
    expect(await apply('credit', 300, 'a')).toMatchObject({
      outcome: 'replayed',
      movement: { balance_after: 300 },
    });
    expect(await apply('debit', 301, 'b')).toEqual({ outcome: 'refused', reason: 'insufficient_points' });
    expect(await apply('debit', 300, 'c')).toMatchObject({
      outcome: 'applied',
      movement: { balance_after: 0 },
    });
  });

  it('converts points into a bound coupon once, refusing what the balance, the day or the campaign forbid', async () => {
    const customer = uid('cus');
    const cmp = await campaign();
    const program = `prg_${newId('campaign').slice(4)}`;
    await db
      .insertInto('points_programs')
      .values({
        id: program,
        name: 'p',
        campaign_id: cmp,
        currency: 'USD',
        minor_per_point: 1,
        min_points: 100,
        step_points: 100,
        max_points_per_conversion: 10_000,
        daily_limit_points: 500,
        validity_months: 12,
        multiplier_bp: 10_000,
        tier_multipliers_bp: '{}',
        code_format: '{random6}',
        updated_at: NOW,
      })
      .execute();
    await call(
      POINTS_APPLY,
      POINTS_APPLY.values({
        customer_id: customer,
        kind: 'credit',
        points: 1000,
        reason: 'r',
        key: 'seed',
        fingerprint: 'f',
        event_id: newId('event'),
        now: NOW.toISOString(),
      }),
    );
    const convert = (key: string, points: number, codeText = uid('CNV')) =>
      call<{ outcome: string; reason?: string }>(
        CONVERT,
        CONVERT.values({
          id: newId('conversion'),
          event_id: newId('event'),
          key,
          fingerprint: 'f',
          customer_id: customer,
          program_id: program,
          points,
          amount_minor: points,
          currency: 'USD',
          daily_limit: 500,
          utc_day: '2026-06-01',
          code_id: newId('code'),
          code: codeText,
          normalized: codeText,
          campaign_id: cmp,
          expires_at: '2027-06-01T12:00:00Z',
          now: NOW.toISOString(),
        }),
      );
    const taken = uid('CNV');
    expect((await convert('k1', 300, taken)).outcome).toBe('converted');
    expect((await convert('k1', 300)).outcome).toBe('replayed');
    expect(await convert('k2', 300)).toEqual({
      outcome: 'refused',
      reason: 'daily_conversion_limit_exceeded',
    });
    expect(await convert('k3', 100, taken)).toEqual({ outcome: 'code_collision' });
    expect(await convert('k4', 5000)).toEqual({ outcome: 'refused', reason: 'insufficient_points' });
    await db.updateTable('campaigns').set({ status: 'paused' }).where('id', '=', cmp).execute();
    expect(await convert('k5', 100)).toEqual({ outcome: 'refused', reason: 'points_program_inactive' });
    const account = await db
      .selectFrom('points_accounts')
      .select('balance')
      .where('customer_id', '=', customer)
      .executeTakeFirstOrThrow();
    expect(account.balance).toBe(700);

    // The coupon expires unused: its points come back exactly once (the program refunds on expiry).
    await db
      .updateTable('points_programs')
      .set({ refund_on_expiry: true })
      .where('id', '=', program)
      .execute();
    const conversion = await db
      .selectFrom('conversions')
      .select(['id', 'code_id'])
      .where('customer_id', '=', customer)
      .executeTakeFirstOrThrow();
    await db
      .updateTable('codes')
      .set({ expires_at: new Date('2026-06-01T11:00:00Z') })
      .where('id', '=', conversion.code_id)
      .execute();
    const refund = () =>
      call<{ outcome: string }>(
        REFUND_EXPIRED,
        REFUND_EXPIRED.values({
          conversion_id: conversion.id,
          event_id: newId('event'),
          now: NOW.toISOString(),
        }),
      );
    expect((await refund()).outcome).toBe('refunded');
    expect((await refund()).outcome).toBe('not_refundable');
    const after = await db
      .selectFrom('points_accounts')
      .select('balance')
      .where('customer_id', '=', customer)
      .executeTakeFirstOrThrow();
    expect(after.balance).toBe(1000);
  });

  it('guards code shapes: a chosen code with a batch shape and a wrong check symbol is refused', async () => {
    const cmp = await campaign();
    const prefix = uid('G').slice(0, 6);
    await db
      .insertInto('code_batches')
      .values({ id: newId('batch'), campaign_id: cmp, prefix, random_length: 8, requested: 1 })
      .execute();
    const body = 'ABCDEFGH';
    const good = checkCharacter(body);
    const bad = CODE_ALPHABET[(CODE_ALPHABET.indexOf(good) + 1) % 32] as string;
    const insert = (text: string) =>
      db
        .insertInto('codes')
        .values({ id: newId('code'), campaign_id: cmp, code: text, normalized: text, kind: 'public' })
        .execute();
    await expect(insert(`${prefix}${body}${bad}`)).rejects.toMatchObject({ code: 'PGSHP' });
    await expect(insert(`${prefix}${body}${good}`)).resolves.toBeDefined();
  });

  it('checks Luhn mod 32 exactly as the domain does', async () => {
    const bodies = Array.from({ length: 50 }, () =>
      Array.from(randomBytes(10), (b) => CODE_ALPHABET[b & 31]).join(''),
    );
    const texts = bodies.flatMap((b) => [b + checkCharacter(b), `${b}2`, `${b}Z`]);
    const { rows } = await sql<{ t: string; valid: boolean }>`
      SELECT t, promoguard_luhn32_valid(t) AS valid FROM unnest(${texts}::text[]) AS t`.execute(db);
    for (const row of rows) expect(row.valid, row.t).toBe(hasValidCheckCharacter(row.t));
  });

  it('reads a validation context in one call: the code, its campaign and the customer counts', async () => {
    const cmp = await campaign({ per_customer_cap: 3 });
    const codeId = await code(cmp);
    const p = params(cmp, codeId);
    expect((await redeem(p)).outcome).toBe('redeemed');
    const normalized = (
      await db.selectFrom('codes').select('normalized').where('id', '=', codeId).executeTakeFirstOrThrow()
    ).normalized;
    const context = await call<{ code: { id: string }; campaign: { id: string }; customer_uses: number }>(
      CONTEXT,
      CONTEXT.values({
        normalized,
        customer_id: p.customerId,
        key: null,
        keys: [`customer:${p.customerId}`],
        currency: 'USD',
        now: NOW.toISOString(),
        shared_limit: null,
        account_created_at: null,
      }),
    );
    expect(context).toMatchObject({ code: { id: codeId }, campaign: { id: cmp }, customer_uses: 1 });
    const replay = await call<{ existing: { id: string } }>(
      CONTEXT,
      CONTEXT.values({
        normalized,
        customer_id: p.customerId,
        key: p.idempotencyKey,
        keys: [],
        currency: 'USD',
        now: NOW.toISOString(),
        shared_limit: null,
        account_created_at: null,
      }),
    );
    expect(replay.existing.id).toBe(p.id);
  });

  it('claims undelivered events with a lease and marks delivered ones published', async () => {
    // Earlier tests' events are marked first, so the pass below sees only this test's event.
    for (;;) {
      const { rows } = await db.executeQuery<{ id: string }>(
        CompiledQuery.raw(
          OUTBOX_PASS.sql,
          OUTBOX_PASS.values({ published: [], limit: 1000, lease_ms: 60_000 }),
        ),
      );
      if (rows.length === 0) break;
      await db.executeQuery(
        CompiledQuery.raw(
          OUTBOX_PASS.sql,
          OUTBOX_PASS.values({ published: rows.map((r) => r.id), limit: 0, lease_ms: 0 }),
        ),
      );
    }
    const cmp = await campaign();
    const p = params(cmp, await code(cmp));
    expect((await redeem(p)).outcome).toBe('redeemed');
    const pass = (published: string[]) =>
      db.executeQuery<{ id: string }>(
        CompiledQuery.raw(OUTBOX_PASS.sql, OUTBOX_PASS.values({ published, limit: 10, lease_ms: 60_000 })),
      );
    expect((await pass([])).rows.map((r) => r.id)).toEqual([p.eventId]);
    // Claimed under a lease: a second relay does not get it.
    expect((await pass([])).rows).toEqual([]);
    await pass([p.eventId]);
    const published = await db
      .selectFrom('outbox')
      .select('published_at')
      .where('id', '=', p.eventId)
      .executeTakeFirstOrThrow();
    expect(published.published_at).not.toBeNull();
  });
});
