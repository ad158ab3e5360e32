/**
 * Reconciliation through the real app on both stores: a database made by ordinary traffic (merged
 * persons, rollbacks, reviews, partner codes, points and conversions) reconciles to zero; then each
 * invariant is broken on purpose with SQL and the next report names exactly the broken entity and the
 * difference, to the cent. Also the reports' pages, the CSV for finance, scopes, one run at a time,
 * the takeover of an abandoned run, and that a finished report can never be changed.
 */
import { parse } from 'csv-parse/sync';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconciliationCsv } from '../../src/formats/reconciliation.js';
import { systemClock } from '../../src/lib/clock.js';
import { type ReconciliationProgress, ReconciliationService } from '../../src/services/reconciliation.js';
import { lastFinishedReconciliation } from '../../src/store/reconciliation.js';
import {
  campaignBody,
  checkoutBody,
  silentLogger,
  startTestApp,
  type TestApp,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

interface Item {
  seq?: number;
  kind: string;
  campaign_id: string | null;
  entity: Record<string, string>;
  currency: string | null;
  unit: string;
  expected: number;
  actual: number;
  difference: number;
}

interface Report {
  id: string;
  status: string;
  triggered_by: string;
  failure: string | null;
  summary: {
    mismatched_rows: number;
    checked: { campaigns: number; points_accounts: number };
    kinds: Record<
      string,
      { rows: number; itemised: number; difference: number; by_currency?: Record<string, number> }
    >;
  };
  items: Item[];
  next_cursor: number | null;
}

const keyOf = (i: Item) =>
  `${i.kind} ${JSON.stringify(Object.entries(i.entity).sort(([a], [b]) => a.localeCompare(b)))}`;
const withoutSeq = ({ seq: _seq, ...rest }: Item): Item => rest;

describe.each(backends.map((b) => [b.name, b] as const))('reconciliation on %s', (_name, backend) => {
  let t: TestApp;
  let finance: string;
  const ids = {
    a: '',
    b: '',
    pointsCampaign: '',
    publicCode: '',
    partnerCode: '',
    r2: '',
    r2b: '',
    b1: '',
    conversion: '',
  };
  /** Every mismatch reported so far, by kind and entity: each break must add exactly its own. */
  const seen = new Map<string, Item>();

  async function redeem(
    code: string,
    customer: string,
    options: { subtotal?: number; currency?: string; context?: Record<string, unknown> } = {},
  ): Promise<{ id: string; status: number; review: string | null }> {
    const res = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, {
        customer: { id: customer },
        cart: { currency: options.currency ?? 'USD', subtotal_minor: options.subtotal ?? 10_000 },
        ...(options.context ? { context: options.context } : {}),
      }),
      headers: { 'idempotency-key': unique('rk-') },
    });
    expect(res.statusCode, res.body).toBe(201);
    return { id: res.json().id, status: res.statusCode, review: res.json().review_status ?? null };
  }

  async function post(url: string, body: unknown, key = t.keys.admin, headers: Record<string, string> = {}) {
    const res = await t.call('POST', url, { key, body, headers });
    expect(res.statusCode, `${url}: ${res.body}`).toBeLessThan(300);
    return res.json();
  }

  async function reconcile(): Promise<Report> {
    const res = await t.call('POST', '/v1/reconciliations', { key: finance });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Report;
  }

  async function allItems(id: string, query = ''): Promise<Item[]> {
    const items: Item[] = [];
    let cursor: number | null = null;
    do {
      const res = await t.call(
        'GET',
        `/v1/reconciliations/${id}?limit=3${cursor === null ? '' : `&cursor=${cursor}`}${query}`,
        { key: finance },
      );
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as Report;
      items.push(...body.items);
      cursor = body.next_cursor;
    } while (cursor !== null);
    return items;
  }

  /** Reconcile; the mismatches not reported before (the ones already known must all still be there). */
  async function newMismatches(): Promise<Item[]> {
    const report = await reconcile();
    const items = (await allItems(report.id)).map(withoutSeq);
    expect(report.status).toBe(items.length > 0 ? 'mismatch' : 'ok');
    expect(report.summary.mismatched_rows).toBe(items.length);
    const known = items.filter((i) => seen.has(keyOf(i)));
    expect(known.map(keyOf).sort()).toEqual([...seen.keys()].sort());
    const fresh = items.filter((i) => !seen.has(keyOf(i)));
    for (const i of fresh) seen.set(keyOf(i), i);
    return fresh;
  }

  async function run(statement: ReturnType<typeof sql>) {
    return statement.execute(t.app.db);
  }

  beforeAll(async () => {
    t = await startTestApp(backend, {
      env: { RECONCILIATION_INTERVAL_MINUTES: '0', RISK_DEFAULT_PACK: 'off' },
    });
    finance = (await t.app.apiKeys.create('finance', ['finance'], 'test')).secret;

    // Campaign A (USD, 5.00 off): a public code, a partner code with a cap, and a rule that holds
    // orders of 77.77 for review.
    ids.a = (await post('/v1/campaigns', campaignBody({ name: 'A', per_person_cap: 10 }))).id;
    ids.publicCode = unique('PUBA');
    ids.partnerCode = unique('PARA');
    await post(`/v1/campaigns/${ids.a}/codes`, { code: ids.publicCode });
    await post(`/v1/campaigns/${ids.a}/codes`, { code: ids.partnerCode, partner: 'acme' });
    await t.call('PUT', `/v1/campaigns/${ids.a}/partners/acme`, { body: { cap: 100, reason: 'launch' } });
    await post('/v1/rules', {
      name: 'hold 77.77',
      expression: 'order.subtotal_minor == 7777',
      action: 'review',
      reason: 'test hold',
      mode: 'enforce',
      campaign_id: ids.a,
    });

    // cus_1 and cus_2 are two persons until cus_5 shares cus_1's card and cus_2's email: then one,
    // and cus_2's redemptions keep the person id that no longer exists.
    await redeem(ids.publicCode, 'cus_1', { context: { payment_fingerprint: 'card-1' } });
    ids.r2 = (await redeem(ids.publicCode, 'cus_2', { context: { email: 'two@example.com' } })).id;
    ids.r2b = (await redeem(ids.publicCode, 'cus_2', { context: { email: 'two@example.com' } })).id;
    await redeem(ids.publicCode, 'cus_5', {
      context: { payment_fingerprint: 'card-1', email: 'two@example.com' },
    });
    await redeem(ids.partnerCode, 'cus_3');
    const r5 = await redeem(ids.partnerCode, 'cus_1', { context: { payment_fingerprint: 'card-1' } });
    // The rollback gives the use back to cus_2's person as it is now, not the one stored with r2b.
    await post(`/v1/redemptions/${ids.r2b}/rollback`, { reason: 'cancelled' }, t.keys.checkout);
    await post(`/v1/redemptions/${r5.id}/rollback`, {}, t.keys.checkout);
    const held1 = await redeem(ids.publicCode, 'cus_6', { subtotal: 7777 });
    const held2 = await redeem(ids.publicCode, 'cus_7', { subtotal: 7777 });
    await post(`/v1/reviews/${held1.id}/reject`, {}, t.keys.admin);
    await post(`/v1/reviews/${held2.id}/approve`, {}, t.keys.admin);

    // Campaign B (EUR, 10 %): 10.00 and 12.34 off (12.345 rounds half to even).
    ids.b = (
      await post(
        '/v1/campaigns',
        campaignBody({ name: 'B', currency: 'EUR', discount: { type: 'percentage', basis_points: 1000 } }),
      )
    ).id;
    const codeB = unique('PUBB');
    await post(`/v1/campaigns/${ids.b}/codes`, { code: codeB });
    ids.b1 = (await redeem(codeB, 'cus_4', { currency: 'EUR', subtotal: 10_000 })).id;
    await redeem(codeB, 'cus_4', { currency: 'EUR', subtotal: 12_345 });

    // Points: credit, debit, a conversion into a coupon, and the coupon redeemed.
    const program = await post('/v1/points-programs', { name: 'Yen points', currency: 'JPY' });
    ids.pointsCampaign = program.campaign_id;
    const points = (customer: string, body: unknown) =>
      post(`/v1/customers/${customer}/points`, body, t.keys.checkout, { 'idempotency-key': unique('pk-') });
    await points('cus_70', { type: 'credit', points: 1200, reason: 'order 1' });
    await points('cus_70', { type: 'debit', points: 100, reason: 'correction' });
    await points('cus_71', { type: 'credit', points: 300, reason: 'order 2' });
    const conversion = await post(
      '/v1/customers/cus_70/conversions',
      { program_id: program.id, points: 500 },
      t.keys.checkout,
      { 'idempotency-key': 'convert-1' },
    );
    ids.conversion = conversion.id;
    await redeem(conversion.coupon.code, 'cus_70', { currency: 'JPY', subtotal: 10_000 });
    await t.app.relay.drain();
  });

  afterAll(async () => {
    await t?.close();
  });

  it('reconciles a database made by ordinary traffic to zero, every kind checked', async () => {
    // The merge left r2 with a person that no longer exists: the check must follow the customer.
    const stale = await run(sql<{ stored: string; now: string }>`
      SELECT r.person_id AS stored, n.person_id AS now FROM redemptions r
        JOIN identity_nodes n ON n.key = 'customer:' || r.customer_id WHERE r.id = ${ids.r2}`);
    const row = stale.rows[0] as { stored: string; now: string };
    expect(row.stored).not.toBe(row.now);

    const report = await reconcile();
    expect(report).toMatchObject({ status: 'ok', failure: null, items: [], next_cursor: null });
    expect(report.summary.mismatched_rows).toBe(0);
    expect(report.summary.checked).toMatchObject({ campaigns: 3, points_accounts: 2 });
    expect(Object.keys(report.summary.kinds).sort()).toEqual(
      [
        'campaign_redemptions',
        'campaign_spent',
        'code_uses',
        'customer_usage',
        'ledger_balance',
        'ledger_currency',
        'ledger_expense',
        'missing_event',
        'partner_usage',
        'person_usage',
        'points_balance',
        'points_daily',
        'points_movement',
        'redemption_ledger',
        'undelivered_event',
      ].sort(),
    );
    expect(Object.values(report.summary.kinds).every((k) => k.rows === 0 && k.difference === 0)).toBe(true);
  });

  it('names a campaign whose spent_minor is one cent over its redemptions', async () => {
    await run(sql`UPDATE campaigns SET spent_minor = spent_minor + 1 WHERE id = ${ids.a}`);
    expect(await newMismatches()).toEqual([
      {
        kind: 'campaign_spent',
        campaign_id: ids.a,
        entity: { campaign_id: ids.a },
        currency: 'USD',
        unit: 'minor',
        expected: 2500,
        actual: 2501,
        difference: 1,
      },
    ]);
  });

  it("names a code whose uses were bumped, and a campaign's redemptions_used one short", async () => {
    const code = await run(sql<{ id: string }>`SELECT id FROM codes WHERE code = ${ids.publicCode}`);
    const codeId = (code.rows[0] as { id: string }).id;
    await run(sql`UPDATE codes SET uses = uses + 1 WHERE id = ${codeId}`);
    await run(sql`UPDATE campaigns SET redemptions_used = redemptions_used - 1 WHERE id = ${ids.b}`);
    const found = await newMismatches();
    expect(found).toHaveLength(2);
    expect(found).toContainEqual({
      kind: 'code_uses',
      campaign_id: ids.a,
      entity: { campaign_id: ids.a, code_id: codeId },
      currency: null,
      unit: 'count',
      expected: 4,
      actual: 5,
      difference: 1,
    });
    expect(found).toContainEqual({
      kind: 'campaign_redemptions',
      campaign_id: ids.b,
      entity: { campaign_id: ids.b },
      currency: null,
      unit: 'count',
      expected: 2,
      actual: 1,
      difference: -1,
    });
  });

  it('names a deleted customer_usage row, a person over-counted and a partner over-counted', async () => {
    await run(sql`DELETE FROM customer_usage WHERE campaign_id = ${ids.b} AND customer_id = 'cus_4'`);
    const person = await run(
      sql<{ person_id: string }>`SELECT person_id FROM identity_nodes WHERE key = 'customer:cus_5'`,
    );
    const personId = (person.rows[0] as { person_id: string }).person_id;
    await run(
      sql`UPDATE person_usage SET uses = uses + 1 WHERE campaign_id = ${ids.a} AND person_id = ${personId}`,
    );
    await run(sql`UPDATE partner_caps SET used = used + 2 WHERE campaign_id = ${ids.a} AND partner = 'acme'`);
    const found = await newMismatches();
    expect(found).toHaveLength(3);
    expect(found).toContainEqual({
      kind: 'customer_usage',
      campaign_id: ids.b,
      entity: { campaign_id: ids.b, customer_id: 'cus_4' },
      currency: null,
      unit: 'count',
      expected: 2,
      actual: 0,
      difference: -2,
    });
    // cus_1's, cus_2's and cus_5's redemptions in force count for the merged person.
    expect(found).toContainEqual({
      kind: 'person_usage',
      campaign_id: ids.a,
      entity: { campaign_id: ids.a, person_id: personId },
      currency: null,
      unit: 'count',
      expected: 3,
      actual: 4,
      difference: 1,
    });
    expect(found).toContainEqual({
      kind: 'partner_usage',
      campaign_id: ids.a,
      entity: { campaign_id: ids.a, partner: 'acme' },
      currency: null,
      unit: 'count',
      expected: 1,
      actual: 3,
      difference: 2,
    });
  });

  it('names a stray ledger entry on the campaign, its balance and its redemption, to the cent', async () => {
    // Ledger rows are immutable: the only way to break the ledger is to add to it.
    await run(sql`INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type)
                  VALUES (${ids.b1}, ${ids.b}, 'promo_expense', 250, 'EUR', 'redemption')`);
    const found = await newMismatches();
    expect(found).toHaveLength(3);
    expect(found).toContainEqual({
      kind: 'ledger_expense',
      campaign_id: ids.b,
      entity: { campaign_id: ids.b, account: 'promo_expense' },
      currency: 'EUR',
      unit: 'minor',
      expected: 2234,
      actual: 2484,
      difference: 250,
    });
    expect(found).toContainEqual({
      kind: 'ledger_balance',
      campaign_id: ids.b,
      entity: { campaign_id: ids.b },
      currency: 'EUR',
      unit: 'minor',
      expected: 0,
      actual: 250,
      difference: 250,
    });
    expect(found).toContainEqual({
      kind: 'redemption_ledger',
      campaign_id: ids.b,
      entity: { campaign_id: ids.b, redemption_id: ids.b1, account: 'promo_expense' },
      currency: 'EUR',
      unit: 'minor',
      expected: 1000,
      actual: 1250,
      difference: 250,
    });
  });

  it('names a points balance off its movements, a movement off the chain, and a daily total off its conversions', async () => {
    await run(sql`UPDATE points_accounts SET balance = balance + 7 WHERE customer_id = 'cus_70'`);
    // A movement appended with a wrong balance_after: 300 + 30 would be 330.
    const stray = await run(sql<{ id: number }>`
      INSERT INTO points_movements (customer_id, kind, points, balance_after, reason)
      VALUES ('cus_71', 'expiry_refund', 30, 335, 'planted') RETURNING id`);
    const movementId = String((stray.rows[0] as { id: number }).id);
    await run(sql`UPDATE points_daily SET points = points + 100 WHERE customer_id = 'cus_70'`);
    const day = await run(
      sql<{ day: string }>`SELECT utc_day::text AS day FROM points_daily WHERE customer_id = 'cus_70'`,
    );
    const utcDay = (day.rows[0] as { day: string }).day;
    const found = await newMismatches();
    expect(found).toHaveLength(4);
    expect(found).toContainEqual({
      kind: 'points_balance',
      campaign_id: null,
      entity: { customer_id: 'cus_70' },
      currency: null,
      unit: 'points',
      expected: 600,
      actual: 607,
      difference: 7,
    });
    expect(found).toContainEqual({
      kind: 'points_balance',
      campaign_id: null,
      entity: { customer_id: 'cus_71' },
      currency: null,
      unit: 'points',
      expected: 330,
      actual: 300,
      difference: -30,
    });
    expect(found).toContainEqual({
      kind: 'points_movement',
      campaign_id: null,
      entity: { customer_id: 'cus_71', movement_id: movementId },
      currency: null,
      unit: 'points',
      expected: 330,
      actual: 335,
      difference: 5,
    });
    expect(found).toContainEqual({
      kind: 'points_daily',
      campaign_id: null,
      entity: { customer_id: 'cus_70', utc_day: utcDay },
      currency: null,
      unit: 'points',
      expected: 500,
      actual: 600,
      difference: 100,
    });
  });

  it('names changes whose events are gone, and events left undelivered past the grace period', async () => {
    const credited = await run(sql<{ id: string; movement: string }>`
      SELECT o.id, o.payload -> 'movement' ->> 'id' AS movement FROM outbox o
       WHERE o.type = 'points.credited' AND o.aggregate_id = 'cus_70'`);
    const credit = credited.rows[0] as { id: string; movement: string };
    await run(sql`DELETE FROM outbox WHERE type = 'redemption.created' AND aggregate_id = ${ids.r2b}`);
    await run(sql`DELETE FROM outbox WHERE type = 'redemption.rolled_back' AND aggregate_id = ${ids.r2b}`);
    await run(sql`DELETE FROM outbox WHERE type = 'points.converted' AND aggregate_id = 'cus_70'`);
    await run(sql`DELETE FROM outbox WHERE id = ${credit.id}`);
    // Claimed by a relay that never finished: one past the 5-minute grace, one within it.
    await run(sql`INSERT INTO outbox (id, type, aggregate_id, payload, created_at, claimed_until)
                  VALUES ('evt_stuck_old', 'campaign.updated', ${ids.a}, '{}', now() - interval '10 minutes',
                          now() + interval '1 hour'),
                         ('evt_stuck_new', 'campaign.updated', ${ids.a}, '{}', now() - interval '1 minute',
                          now() + interval '1 hour')`);
    const found = await newMismatches();
    const missing = (entity: Record<string, string>, campaignId: string | null = null) => ({
      kind: 'missing_event',
      campaign_id: campaignId,
      entity,
      currency: null,
      unit: 'count',
      expected: 1,
      actual: 0,
      difference: -1,
    });
    expect(found).toHaveLength(5);
    expect(found).toContainEqual(
      missing({ event_type: 'redemption.created', redemption_id: ids.r2b }, ids.a),
    );
    expect(found).toContainEqual(
      missing({ event_type: 'redemption.rolled_back', redemption_id: ids.r2b }, ids.a),
    );
    expect(found).toContainEqual(
      missing({ event_type: 'points.converted', customer_id: 'cus_70', conversion_id: ids.conversion }),
    );
    expect(found).toContainEqual(
      missing({ event_type: 'points.credited', customer_id: 'cus_70', movement_id: credit.movement }),
    );
    const undelivered = found.find((i) => i.kind === 'undelivered_event');
    expect(undelivered).toMatchObject({
      campaign_id: null,
      entity: { event_id: 'evt_stuck_old', event_type: 'campaign.updated', aggregate_id: ids.a },
      unit: 'count',
      expected: 1,
      actual: 0,
    });
  });

  it('pages the report, filters it by kind, and sums each kind in its summary', async () => {
    const [latest] = (await t.call('GET', '/v1/reconciliations?limit=1', { key: finance })).json()
      .data as Report[];
    if (!latest) throw new Error('no report');
    const items = await allItems(latest.id);
    expect(items).toHaveLength(seen.size);
    expect(items.map((i) => i.seq)).toEqual([...items.map((i) => i.seq as number)].sort((a, b) => a - b));
    const points = await allItems(latest.id, '&kind=points_balance');
    expect(points.map((i) => i.entity.customer_id).sort()).toEqual(['cus_70', 'cus_71']);
    expect(latest.summary.kinds.points_balance).toMatchObject({ rows: 2, itemised: 2, difference: 37 });
    expect(latest.summary.kinds.redemption_ledger).toMatchObject({
      rows: 1,
      difference: 250,
      by_currency: { EUR: 250 },
    });
    expect(latest.summary.kinds.code_uses).toMatchObject({ rows: 1, difference: 1 });
  });

  it('exports every mismatch as CSV for finance: kind, entity, currency, expected, actual, difference', async () => {
    const [latest] = (await t.call('GET', '/v1/reconciliations?limit=1', { key: finance })).json()
      .data as Report[];
    if (!latest) throw new Error('no report');
    const res = await t.call('GET', `/v1/reconciliations/${latest.id}?format=csv`, { key: finance });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="${latest.id}.csv"`);
    const [header] = res.body.split('\n');
    expect(header).toBe('kind,entity,currency,expected,actual,difference');
    const rows = parse(res.body, { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(seen.size);
    expect(rows).toContainEqual({
      kind: 'campaign_spent',
      entity: `campaign_id=${ids.a}`,
      currency: 'USD',
      expected: '2500',
      actual: '2501',
      difference: '1',
    });
    expect(rows).toContainEqual({
      kind: 'redemption_ledger',
      entity: `campaign_id=${ids.b}; redemption_id=${ids.b1}; account=promo_expense`,
      currency: 'EUR',
      expected: '1000',
      actual: '1250',
      difference: '250',
    });
    expect(rows).toContainEqual({
      kind: 'customer_usage',
      entity: `campaign_id=${ids.b}; customer_id=cus_4`,
      currency: '',
      expected: '2',
      actual: '0',
      difference: '-2',
    });
  });

  it('keeps a customer id that looks like a formula out of the spreadsheet', async () => {
    const lines: string[] = [];
    for await (const chunk of reconciliationCsv(
      (async function* () {
        yield [
          {
            seq: 1,
            kind: 'customer_usage' as const,
            campaignId: null,
            entity: { '=cmd': 'x' },
            currency: null,
            unit: 'count' as const,
            expected: 1,
            actual: -2,
            difference: -3,
          },
        ];
      })(),
    ))
      lines.push(chunk);
    expect(lines.join('')).toBe(
      "kind,entity,currency,expected,actual,difference\ncustomer_usage,'=cmd=x,,1,-2,-3\n",
    );
  });

  it('lists reports newest first, in pages', async () => {
    const first = await t.call('GET', '/v1/reconciliations?limit=2', { key: finance });
    expect(first.statusCode).toBe(200);
    const page1 = first.json() as { data: Report[]; next_cursor: string | null };
    expect(page1.data).toHaveLength(2);
    expect(page1.next_cursor).toBe(page1.data[1]?.id);
    const second = await t.call('GET', `/v1/reconciliations?limit=50&cursor=${page1.next_cursor}`, {
      key: finance,
    });
    const rest = (second.json() as { data: Report[] }).data;
    const all = [...page1.data, ...rest];
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort().reverse());
    expect(all).toHaveLength(7);
    expect(all.every((r) => r.triggered_by.startsWith('key_'))).toBe(true);
    expect(all.at(-1)?.status).toBe('ok');
  });

  it('finds the same mismatches whatever the batch sizes, reporting progress batch by batch', async () => {
    // One campaign and one points account per statement: every batch edge is crossed.
    const service = new ReconciliationService(
      { db: t.app.db, clock: systemClock, afterCommit: () => {} },
      {
        intervalMinutes: 0,
        logger: silentLogger,
        campaignBatchSize: 1,
        campaignBatchRedemptions: 1,
        pointsBatchSize: 1,
      },
    );
    const progress: ReconciliationProgress[] = [];
    const result = await service.run('test', (p) => progress.push(p));
    if (result.outcome !== 'finished') throw new Error(result.outcome);
    expect(result.reconciliation.status).toBe('mismatch');
    const items = await service.mismatches(result.reconciliation.id, { limit: 1000 });
    const asJson = items.map((i) => ({
      kind: i.kind,
      campaign_id: i.campaignId,
      entity: i.entity,
      currency: i.currency,
      unit: i.unit,
      expected: i.expected,
      actual: i.actual,
      difference: i.difference,
    }));
    expect(asJson).toHaveLength(seen.size);
    expect(new Map(asJson.map((i) => [keyOf(i), i]))).toEqual(seen);
    // 3 campaigns, 2 points accounts, 3 whole-database checks; each batch reports once.
    expect(progress.map((p) => [p.phase, p.done])).toEqual([
      ['campaigns', 0],
      ['campaigns', 1],
      ['campaigns', 2],
      ['campaigns', 3],
      ['points', 4],
      ['points', 5],
      ['points', 5],
      ['ledger', 6],
      ['events', 7],
      ['outbox', 8],
    ]);
    expect(progress.every((p) => p.total === 8)).toBe(true);
  });

  it('feeds the metrics: the last finished report, every kind with its rows and minor units', async () => {
    const last = await lastFinishedReconciliation(t.app.db);
    expect(last?.status).toBe('mismatch');
    expect(last?.kinds.ledger_expense).toEqual({
      rows: 1,
      minorUnits: 250,
      minorUnitsByCurrency: { EUR: 250 },
    });
    expect(last?.kinds.campaign_spent).toEqual({ rows: 1, minorUnits: 1, minorUnitsByCurrency: { USD: 1 } });
    expect(last?.kinds.code_uses).toEqual({ rows: 1, minorUnits: 0, minorUnitsByCurrency: {} });
    expect(last?.kinds.points_daily.rows).toBe(1);
  });

  it('needs the finance (or admin) scope to read or run reports', async () => {
    const [latest] = (await t.call('GET', '/v1/reconciliations?limit=1', { key: finance })).json()
      .data as Report[];
    const routes: ['GET' | 'POST', string][] = [
      ['POST', '/v1/reconciliations'],
      ['GET', '/v1/reconciliations'],
      ['GET', `/v1/reconciliations/${latest?.id}`],
      ['GET', `/v1/reconciliations/${latest?.id}?format=csv`],
    ];
    for (const key of [t.keys.marketing, t.keys.checkout]) {
      for (const [method, url] of routes) {
        const res = await t.call(method, url, { key });
        expect(res.statusCode, `${method} ${url}`).toBe(403);
        expect(res.json().code).toBe('forbidden');
      }
    }
    for (const [method, url] of routes.slice(1)) {
      expect((await t.call(method, url, { key: t.keys.admin })).statusCode).toBe(200);
    }
    expect((await t.call('GET', '/v1/reconciliations', { key: null })).statusCode).toBe(401);
    // finance reads money, it does not change campaigns
    expect((await t.call('POST', '/v1/campaigns', { key: finance, body: campaignBody() })).statusCode).toBe(
      403,
    );
    const unknown = await t.call('GET', '/v1/reconciliations/rcn_01J00000000000000000000000', {
      key: finance,
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('reconciliation_not_found');
  });

  let takenOver: Report | undefined;

  it('refuses a second run while one is running (409), and takes over a run its node abandoned', async () => {
    await run(sql`INSERT INTO reconciliations (id, status, triggered_by, started_at, heartbeat_at)
                  VALUES ('rcn_RUNNING', 'running', 'schedule', now(), now())`);
    const busy = await t.call('POST', '/v1/reconciliations', { key: finance });
    expect(busy.statusCode).toBe(409);
    expect(busy.json()).toMatchObject({ code: 'reconciliation_running', reconciliation_id: 'rcn_RUNNING' });

    // Its node stopped renewing it ten minutes ago: the next run closes it as abandoned and goes ahead.
    await run(
      sql`UPDATE reconciliations SET heartbeat_at = now() - interval '10 minutes' WHERE id = 'rcn_RUNNING'`,
    );
    const report = await reconcile();
    expect(report.status).toBe('mismatch');
    takenOver = report;
    const old = await run(
      sql<{
        status: string;
        failure: string;
      }>`SELECT status, failure FROM reconciliations WHERE id = 'rcn_RUNNING'`,
    );
    expect(old.rows[0]).toEqual({ status: 'failed', failure: 'abandoned' });
  });

  it('never changes or deletes a finished report or its items', async () => {
    const id = takenOver?.id ?? '';
    expect(takenOver?.items.length).toBeGreaterThan(0);
    await expect(run(sql`UPDATE reconciliations SET status = 'ok' WHERE id = ${id}`)).rejects.toThrow(
      /never changed/,
    );
    await expect(run(sql`DELETE FROM reconciliations WHERE id = ${id}`)).rejects.toThrow(/never deleted/);
    await expect(
      run(sql`UPDATE reconciliation_items SET actual = expected WHERE reconciliation_id = ${id}`),
    ).rejects.toThrow(/never changed or deleted/);
    await expect(run(sql`DELETE FROM reconciliation_items WHERE reconciliation_id = ${id}`)).rejects.toThrow(
      /never changed or deleted/,
    );
    await expect(
      run(sql`INSERT INTO reconciliation_items (reconciliation_id, kind, entity, unit, expected, actual, difference)
              VALUES (${id}, 'code_uses', '{}', 'count', 0, 0, 0)`),
    ).rejects.toThrow(/is not running/);
    const after = await t.call('GET', `/v1/reconciliations/${id}`, { key: finance });
    expect(after.json().status).toBe('mismatch');
  });
});
