/**
 * Concurrency through the whole HTTP stack: N requests fired at once (Promise.all over Fastify inject)
 * at every cap the redemption path enforces, at one idempotency key, and rollbacks racing redemptions.
 *
 * On PGlite the driver serialises statements, so these runs check the logic under interleaved requests;
 * the PostgreSQL run (TEST_DATABASE_URL) is the one that proves the caps are atomic with real
 * concurrent transactions. After every scenario the campaign's counters are reconciled against the
 * rows they summarise (redemptions, ledger, codes, customer usage, outbox) straight from the tables.
 */

import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileCampaign } from '../../src/store/redemptions.js';
import {
  type CheckoutOverrides,
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  tally,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const DISCOUNT = 500;

function redeem(
  t: TestApp,
  code: string,
  customerId: string,
  idempotencyKey: string,
  overrides: CheckoutOverrides = {},
): Promise<LightMyRequestResponse> {
  return t.call('POST', '/v1/redemptions', {
    key: t.keys.checkout,
    body: checkoutBody(code, { customer: { id: customerId }, ...overrides }),
    headers: { 'idempotency-key': idempotencyKey },
  });
}

function rollback(t: TestApp, redemptionId: string): Promise<LightMyRequestResponse> {
  return t.call('POST', `/v1/redemptions/${redemptionId}/rollback`, {
    key: t.keys.checkout,
    body: { reason: 'order cancelled' },
  });
}

/** Add `count` more multi-use public codes to a campaign; returns their texts. */
async function addPublicCodes(t: TestApp, campaignId: string, count: number): Promise<string[]> {
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const text = unique('PUB');
    const made = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
      key: t.keys.marketing,
      body: { code: text },
    });
    expect(made.statusCode, made.body).toBe(201);
    texts.push(text);
  }
  return texts;
}

/** Every response is a 201 or a 422 redemption_refused with exactly `reason`; returns the successes. */
function expectOnly(responses: LightMyRequestResponse[], reason: string): LightMyRequestResponse[] {
  const counts = tally(responses);
  for (const label of Object.keys(counts)) expect(['201', reason], JSON.stringify(counts)).toContain(label);
  for (const r of responses) {
    if (r.statusCode === 422)
      expect(r.json()).toMatchObject({ status: 422, code: 'redemption_refused', reason });
  }
  return responses.filter((r) => r.statusCode === 201);
}

/** A count or amount from the database as a number (+0, never -0, so that toBe compares cleanly). */
const n = (v: unknown): number => Number(v ?? 0) + 0;

/**
 * The invariants every redemption and rollback must preserve for one campaign, read from the tables:
 * counters == the rows they count, ledger balanced and matching spend, one event per state change.
 * Returns the campaign counters and the redemption rows for scenario-specific checks.
 */
async function assertConsistent(t: TestApp, campaignId: string) {
  const db = t.app.db;
  const campaign = await db
    .selectFrom('campaigns')
    .select(['redemptions_used', 'spent_minor', 'redemption_cap', 'budget_minor'])
    .where('id', '=', campaignId)
    .executeTakeFirstOrThrow();
  const redemptions = await db
    .selectFrom('redemptions')
    .select(['id', 'code_id', 'customer_id', 'status', 'discount_minor'])
    .where('campaign_id', '=', campaignId)
    .execute();
  const inForce = redemptions.filter((r) => r.status === 'redeemed');
  const rolledBack = redemptions.filter((r) => r.status === 'rolled_back');
  expect(inForce.length + rolledBack.length, 'only redeemed / rolled_back rows').toBe(redemptions.length);
  const inForceSpend = inForce.reduce((s, r) => s + n(r.discount_minor), 0);
  const rolledBackSpend = rolledBack.reduce((s, r) => s + n(r.discount_minor), 0);

  // Campaign counters == the redemptions in force, and never beyond the caps.
  expect(n(campaign.redemptions_used), 'redemptions_used == redeemed rows').toBe(inForce.length);
  expect(n(campaign.spent_minor), 'spent_minor == sum of redeemed discounts').toBe(inForceSpend);
  if (campaign.redemption_cap !== null) {
    expect(n(campaign.redemptions_used)).toBeLessThanOrEqual(n(campaign.redemption_cap));
  }
  if (campaign.budget_minor !== null)
    expect(n(campaign.spent_minor)).toBeLessThanOrEqual(n(campaign.budget_minor));

  // Ledger: promo_expense sums to the spend, both accounts sum to zero.
  const ledger = await sql<{ account: string; entry_type: string; total: unknown; entries: unknown }>`
    SELECT account, entry_type, COALESCE(SUM(amount_minor), 0) AS total, COUNT(*) AS entries
      FROM ledger_entries WHERE campaign_id = ${campaignId}
     GROUP BY account, entry_type`.execute(db);
  const ledgerSum = (account?: string, entryType?: string) =>
    ledger.rows
      .filter(
        (r) => (account ? r.account === account : true) && (entryType ? r.entry_type === entryType : true),
      )
      .reduce((s, r) => s + n(r.total), 0);
  const ledgerCount = (entryType: string) =>
    ledger.rows.filter((r) => r.entry_type === entryType).reduce((s, r) => s + n(r.entries), 0);
  expect(ledgerSum('promo_expense'), 'promo_expense == spent_minor').toBe(n(campaign.spent_minor));
  expect(ledgerSum(), 'ledger balances to zero').toBe(0);
  // Exactly one pair per redemption row and one reversing pair per rolled-back row: no rollback
  // restored twice, no refused attempt left an entry behind.
  expect(ledgerCount('redemption'), 'two redemption entries per row').toBe(2 * redemptions.length);
  expect(ledgerSum('promo_expense', 'redemption')).toBe(inForceSpend + rolledBackSpend);
  expect(ledgerCount('reversal'), 'two reversal entries per rolled-back row').toBe(2 * rolledBack.length);
  expect(ledgerSum('promo_expense', 'reversal'), 'reversals == rolled-back discounts').toBe(
    0 - rolledBackSpend,
  );
  const perRedemption = await sql<{ redemption_id: string; entry_type: string; entries: unknown }>`
    SELECT redemption_id, entry_type, COUNT(*) AS entries FROM ledger_entries
     WHERE campaign_id = ${campaignId} GROUP BY redemption_id, entry_type`.execute(db);
  for (const row of perRedemption.rows) {
    const owner = redemptions.find((r) => r.id === row.redemption_id);
    expect(owner, `ledger entry for unknown redemption ${row.redemption_id}`).toBeDefined();
    if (row.entry_type === 'reversal') expect(owner?.status).toBe('rolled_back');
    expect(n(row.entries), `${row.entry_type} entries of ${row.redemption_id}`).toBe(2);
  }

  // The store's own reconciliation agrees.
  expect(await reconcileCampaign(db, campaignId)).toEqual({
    ledgerSpentMinor: inForceSpend,
    redemptionsSpentMinor: inForceSpend,
    activeRedemptions: inForce.length,
    ledgerImbalanceMinor: 0,
  });

  // Each code's uses == its redemptions in force.
  const codes = await db
    .selectFrom('codes')
    .select(['id', 'uses'])
    .where('campaign_id', '=', campaignId)
    .execute();
  for (const code of codes) {
    expect(n(code.uses), `uses of code ${code.id}`).toBe(inForce.filter((r) => r.code_id === code.id).length);
  }
  const codeIds = new Set(codes.map((c) => c.id));
  for (const r of redemptions) expect(codeIds.has(r.code_id)).toBe(true);

  // customer_usage == the customer's redemptions in force in this campaign (absent row = 0).
  const usage = await db
    .selectFrom('customer_usage')
    .select(['customer_id', 'uses'])
    .where('campaign_id', '=', campaignId)
    .execute();
  const usageOf = new Map(usage.map((u) => [u.customer_id, n(u.uses)]));
  const customers = new Set([...usage.map((u) => u.customer_id), ...redemptions.map((r) => r.customer_id)]);
  for (const customer of customers) {
    expect(usageOf.get(customer) ?? 0, `customer_usage of ${customer}`).toBe(
      inForce.filter((r) => r.customer_id === customer).length,
    );
  }

  // Outbox: one redemption.created per redemption row, one redemption.rolled_back per rolled-back row.
  const events = await sql<{ aggregate_id: string; type: string; events: unknown }>`
    SELECT o.aggregate_id, o.type, COUNT(*) AS events FROM outbox o
     WHERE o.type LIKE 'redemption.%'
       AND o.aggregate_id IN (SELECT id FROM redemptions WHERE campaign_id = ${campaignId})
     GROUP BY o.aggregate_id, o.type`.execute(db);
  const eventCount = (id: string, type: string) =>
    n(events.rows.find((e) => e.aggregate_id === id && e.type === type)?.events);
  for (const r of redemptions) {
    expect(eventCount(r.id, 'redemption.created'), `redemption.created of ${r.id}`).toBe(1);
    expect(eventCount(r.id, 'redemption.rolled_back'), `redemption.rolled_back of ${r.id}`).toBe(
      r.status === 'rolled_back' ? 1 : 0,
    );
  }
  expect(events.rows.every((e) => ['redemption.created', 'redemption.rolled_back'].includes(e.type))).toBe(
    true,
  );
  // No event survived for an attempt that was refused (its redemption row was undone with it).
  const orphans = await sql<{ orphans: unknown }>`
    SELECT COUNT(*) AS orphans FROM outbox o
     WHERE o.type LIKE 'redemption.%' AND NOT EXISTS (SELECT 1 FROM redemptions r WHERE r.id = o.aggregate_id)`.execute(
    db,
  );
  expect(n(orphans.rows[0]?.orphans), 'redemption events without a redemption').toBe(0);

  return { campaign, redemptions, inForce, rolledBack };
}

describe.each(backends.map((b) => [b.name, b] as const))('concurrent redemptions on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(async () => t?.close());

  it('redemption_cap 50 holds against 200 concurrent distinct customers: exactly 50 redeemed', async () => {
    const { campaignId, code } = await campaignWithCode(t, { redemption_cap: 50 });
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => redeem(t, code, `cus_cap_${i}`, unique('key-cap-'))),
    );
    expect(tally(responses)).toEqual({ '201': 50, campaign_cap_reached: 150 });
    const ok = expectOnly(responses, 'campaign_cap_reached');
    expect(new Set(ok.map((r) => r.json().id)).size).toBe(50);
    const { campaign, inForce } = await assertConsistent(t, campaignId);
    expect(n(campaign.redemptions_used)).toBe(50);
    expect(n(campaign.spent_minor)).toBe(50 * DISCOUNT);
    expect(inForce.map((r) => r.id).sort()).toEqual(ok.map((r) => r.json().id as string).sort());
  });

  it('a budget for exactly 7 discounts holds against 40 concurrent redemptions: 7 redeemed, the rest budget_exhausted', async () => {
    const { campaignId, code } = await campaignWithCode(t, { budget_minor: 7 * DISCOUNT });
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => redeem(t, code, `cus_budget_${i}`, unique('key-budget-'))),
    );
    expect(tally(responses)).toEqual({ '201': 7, budget_exhausted: 33 });
    expectOnly(responses, 'budget_exhausted');
    const { campaign } = await assertConsistent(t, campaignId);
    expect(n(campaign.spent_minor)).toBe(7 * DISCOUNT);
    expect(n(campaign.redemptions_used)).toBe(7);
  });

  it('per_customer_cap 2 holds against 30 concurrent requests of one customer: exactly 2 redeemed', async () => {
    const { campaignId, code } = await campaignWithCode(t, { per_customer_cap: 2 });
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        redeem(t, code, 'cus_greedy', unique('key-customer-'), { order_id: `ord_${i}` }),
      ),
    );
    expect(tally(responses)).toEqual({ '201': 2, customer_cap_reached: 28 });
    expectOnly(responses, 'customer_cap_reached');
    const { campaign } = await assertConsistent(t, campaignId);
    expect(n(campaign.redemptions_used)).toBe(2);
    const usage = await t.app.db
      .selectFrom('customer_usage')
      .select('uses')
      .where('campaign_id', '=', campaignId)
      .where('customer_id', '=', 'cus_greedy')
      .executeTakeFirstOrThrow();
    expect(n(usage.uses)).toBe(2);
  });

  /*
   * The same campaign-level caps with the requests spread over several public codes. Every redemption
   * locks its code row first, so requests on ONE code queue behind each other on that lock, which would
   * hide a campaign check that read before it wrote. On distinct codes they reach the campaign row
   * side by side on PostgreSQL, and only the conditional campaign UPDATE keeps the cap and budget.
   * (The per-customer count is updated after the campaign row is locked, so it stays serialised by
   * that lock; the case is kept so that the cap is tested on more than one code as well.)
   */
  describe.each([
    {
      cap: 'redemption_cap 50',
      campaign: { redemption_cap: 50 },
      requests: 200,
      ok: 50,
      reason: 'campaign_cap_reached',
      oneCustomer: false,
    },
    {
      cap: 'budget of 7 discounts',
      campaign: { budget_minor: 7 * DISCOUNT },
      requests: 40,
      ok: 7,
      reason: 'budget_exhausted',
      oneCustomer: false,
    },
    {
      cap: 'per_customer_cap 2',
      campaign: { per_customer_cap: 2 },
      requests: 30,
      ok: 2,
      reason: 'customer_cap_reached',
      oneCustomer: true,
    },
  ])('$cap across 8 public codes', ({ campaign: settings, requests, ok, reason, oneCustomer }) => {
    it(`${requests} concurrent requests redeem exactly ${ok}, the rest refused with ${reason}`, async () => {
      const { campaignId, code } = await campaignWithCode(t, settings);
      const codes = [code, ...(await addPublicCodes(t, campaignId, 7))];
      const responses = await Promise.all(
        Array.from({ length: requests }, (_, i) =>
          redeem(
            t,
            codes[i % codes.length]!,
            oneCustomer ? 'cus_spread' : `cus_spread_${i}`,
            unique('key-spread-'),
            {
              order_id: `ord_${i}`,
            },
          ),
        ),
      );
      expect(tally(responses)).toEqual({ '201': ok, [reason]: requests - ok });
      expectOnly(responses, reason);
      const { campaign } = await assertConsistent(t, campaignId);
      expect(n(campaign.redemptions_used)).toBe(ok);
      expect(n(campaign.spent_minor)).toBe(ok * DISCOUNT);
    });
  });

  it('30 concurrent identical requests with one Idempotency-Key make one redemption and 30 identical 201s', async () => {
    const { campaignId, code } = await campaignWithCode(t, { redemption_cap: 10 });
    const key = unique('key-same-');
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => redeem(t, code, 'cus_retry', key, { order_id: 'ord_retry' })),
    );
    expect(tally(responses)).toEqual({ '201': 30 });
    const first = responses[0]!.body;
    for (const r of responses) expect(r.body).toBe(first);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(29);

    const rows = await t.app.db
      .selectFrom('redemptions')
      .select('id')
      .where('idempotency_key', '=', key)
      .execute();
    expect(rows.map((r) => r.id)).toEqual([JSON.parse(first).id]);
    const { campaign, redemptions } = await assertConsistent(t, campaignId);
    expect(redemptions).toHaveLength(1);
    expect(n(campaign.redemptions_used)).toBe(1);
    expect(n(campaign.spent_minor)).toBe(DISCOUNT);
    const codeRow = await t.app.db
      .selectFrom('codes')
      .select('uses')
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(n(codeRow.uses)).toBe(1);
  });

  it('a single-use generated code redeemed by 50 concurrent customers: exactly 1 redeemed, the rest code_used_up', async () => {
    const created = await t.call('POST', '/v1/campaigns', {
      body: {
        name: 'One-off',
        currency: 'USD',
        discount: { type: 'fixed_amount', amount_minor: DISCOUNT },
        status: 'active',
        starts_at: '2020-01-01T00:00:00Z',
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const campaignId = created.json().id as string;
    const generated = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
      key: t.keys.marketing,
      // A prefix of its own: with none, the batch's shape (any 13 symbols) would clash with the
      // chosen codes other tests in this database created (`code_conflicts_with_pattern`).
      body: { generate: { count: 1, prefix: 'SOLO' } },
    });
    expect(generated.statusCode, generated.body).toBe(201);
    expect(generated.json().count).toBe(1);
    const listed = await t.call('GET', `/v1/campaigns/${campaignId}/codes`, { key: t.keys.marketing });
    expect(listed.statusCode, listed.body).toBe(200);
    const codes = listed.json().data as { code: string; max_uses: number; uses: number }[];
    expect(codes).toHaveLength(1);
    expect(codes[0]).toMatchObject({ max_uses: 1, uses: 0 });
    const code = codes[0]!.code;

    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => redeem(t, code, `cus_single_${i}`, unique('key-single-'))),
    );
    expect(tally(responses)).toEqual({ '201': 1, code_used_up: 49 });
    expectOnly(responses, 'code_used_up');
    const { campaign } = await assertConsistent(t, campaignId);
    expect(n(campaign.redemptions_used)).toBe(1);
  });

  it('rollbacks (each sent twice) racing new redemptions: freed slots are refilled exactly once', async () => {
    const CAP = 20;
    const ROLLED_BACK = 10;
    const { campaignId, code } = await campaignWithCode(t, { redemption_cap: CAP });

    const initial = await Promise.all(
      Array.from({ length: CAP }, (_, i) => redeem(t, code, `cus_first_${i}`, unique('key-first-'))),
    );
    expect(tally(initial)).toEqual({ '201': CAP });
    const victims = initial.slice(0, ROLLED_BACK).map((r) => r.json().id as string);

    // Interleave: every rollback twice, and 30 newcomers, all in flight at once.
    const rollbacks: Promise<LightMyRequestResponse>[] = [];
    const newcomers: Promise<LightMyRequestResponse>[] = [];
    for (let i = 0; i < 30; i++) {
      const victim = victims[i % ROLLED_BACK]!;
      if (i < ROLLED_BACK) rollbacks.push(rollback(t, victim));
      newcomers.push(redeem(t, code, `cus_race_${i}`, unique('key-race-')));
      if (i < ROLLED_BACK) rollbacks.push(rollback(t, victim));
    }
    const [rolled, raced] = await Promise.all([Promise.all(rollbacks), Promise.all(newcomers)]);

    // Each rollback call answers 200 with the rolled-back redemption; both calls of a pair agree.
    for (let i = 0; i < ROLLED_BACK; i++) {
      const [a, b] = [rolled[2 * i]!, rolled[2 * i + 1]!];
      for (const r of [a, b]) {
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json()).toMatchObject({
          id: victims[i],
          status: 'rolled_back',
          rollback_reason: 'order cancelled',
        });
      }
      expect(a.body).toBe(b.body);
    }
    // Newcomers could only take slots freed by rollbacks that had committed: 0..10 of them.
    const racedOk = expectOnly(raced, 'campaign_cap_reached');
    expect(racedOk.length).toBeLessThanOrEqual(ROLLED_BACK);

    const afterRace = await assertConsistent(t, campaignId);
    expect(afterRace.rolledBack.map((r) => r.id).sort()).toEqual([...victims].sort());
    expect(n(afterRace.campaign.redemptions_used)).toBe(CAP - ROLLED_BACK + racedOk.length);
    expect(afterRace.inForce).toHaveLength(CAP - ROLLED_BACK + racedOk.length);

    // Every freed slot is still exactly one redemption: a second wave fills what the race left, and no more.
    const second = await Promise.all(
      Array.from({ length: 30 }, (_, i) => redeem(t, code, `cus_fill_${i}`, unique('key-fill-'))),
    );
    const secondOk = expectOnly(second, 'campaign_cap_reached');
    expect(racedOk.length + secondOk.length).toBe(ROLLED_BACK);

    // Repeating a rollback after the dust settles still changes nothing.
    const again = await rollback(t, victims[0]!);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.body).toBe(rolled[0]!.body);

    const final = await assertConsistent(t, campaignId);
    expect(n(final.campaign.redemptions_used)).toBe(CAP);
    expect(n(final.campaign.spent_minor)).toBe(CAP * DISCOUNT);
    expect(final.rolledBack).toHaveLength(ROLLED_BACK);
    expect(final.redemptions).toHaveLength(CAP + ROLLED_BACK);
  });
});
