/**
 * Campaigns through the HTTP API: create and read back each discount type, the validation errors a
 * marketer sees, listing with pages and a status filter, edits and the lifecycle, and pause/resume as
 * the checkout sees them (the very next request) and as the audit log records them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CampaignCreateBody,
  type CheckoutOverrides,
  campaignBody,
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const START = '2026-06-01T12:00:00Z';
/** A well-formed campaign id that no campaign has. */
const UNKNOWN_CAMPAIGN = 'cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV';

interface FieldError {
  field: string;
  message: string;
}

describe.each(backends.map((b) => [b.name, b] as const))('campaigns API on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date(START));

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(START));

  async function create(overrides: Partial<CampaignCreateBody> = {}) {
    const res = await t.call('POST', '/v1/campaigns', {
      key: t.keys.marketing,
      body: campaignBody(overrides),
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

  function validate(code: string, overrides: CheckoutOverrides = {}) {
    return t.call('POST', '/v1/validations', { key: t.keys.checkout, body: checkoutBody(code, overrides) });
  }

  function redeem(code: string, overrides: CheckoutOverrides = {}) {
    return t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, overrides),
      headers: { 'idempotency-key': unique('idem-') },
    });
  }

  /** POST /v1/campaigns with `body` and expect a 400 naming a field that ends with `field`. */
  async function expectInvalid(body: Record<string, unknown>, field: string) {
    const res = await t.call('POST', '/v1/campaigns', { key: t.keys.marketing, body });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = res.json();
    expect(problem).toMatchObject({ code: 'validation_failed', status: 400 });
    expect(problem.request_id).toBe(res.headers['x-request-id']);
    const fields = (problem.errors as FieldError[]).map((e) => e.field);
    expect(
      fields.some((f) => f.endsWith(field)),
      `errors name ${field}: ${JSON.stringify(fields)}`,
    ).toBe(true);
    return problem;
  }

  describe('create and read back', () => {
    it('a fixed amount campaign with all its limits', async () => {
      const body = campaignBody({
        name: 'Spring 10 off',
        currency: 'EUR',
        discount: { type: 'fixed_amount', amount_minor: 1000 },
        status: 'active',
        starts_at: '2026-05-01T00:00:00Z',
        ends_at: '2026-07-01T00:00:00Z',
        redemption_cap: 50,
        budget_minor: 50_000,
        per_customer_cap: 2,
        min_order_minor: 3000,
        eligibility: { segments: ['gold'], regions: ['EU'], first_order_only: true },
        metadata: { owner: 'growth' },
      });
      const res = await t.call('POST', '/v1/campaigns', { key: t.keys.marketing, body });
      expect(res.statusCode, res.body).toBe(201);
      const created = res.json();
      expect(created.id).toMatch(/^cmp_[0-9A-HJKMNP-TV-Z]{26}$/);

      const read = await t.call('GET', `/v1/campaigns/${created.id}`, { key: t.keys.marketing });
      expect(read.statusCode, read.body).toBe(200);
      expect(read.json()).toEqual(created);
      expect(read.json()).toMatchObject({
        name: 'Spring 10 off',
        status: 'active',
        currency: 'EUR',
        discount: { type: 'fixed_amount', amount_minor: 1000 },
        starts_at: '2026-05-01T00:00:00.000Z',
        ends_at: '2026-07-01T00:00:00.000Z',
        redemption_cap: 50,
        budget_minor: 50_000,
        per_customer_cap: 2,
        min_order_minor: 3000,
        eligibility: { customer_ids: null, segments: ['gold'], regions: ['EU'], first_order_only: true },
        metadata: { owner: 'growth' },
        redemptions_used: 0,
        spent_minor: 0,
        version: 1,
      });
    });

    it('a percentage campaign with a maximum, and one without', async () => {
      const capped = await create({
        discount: { type: 'percentage', basis_points: 1500, max_discount_minor: 2000 },
      });
      const read = await t.call('GET', `/v1/campaigns/${capped.id}`);
      expect(read.json().discount).toEqual({
        type: 'percentage',
        basis_points: 1500,
        max_discount_minor: 2000,
      });

      const open = await create({ discount: { type: 'percentage', basis_points: 10_000 } });
      const readOpen = await t.call('GET', `/v1/campaigns/${open.id}`);
      expect(readOpen.json().discount).toEqual({
        type: 'percentage',
        basis_points: 10_000,
        max_discount_minor: null,
      });
    });

    it('a free shipping campaign, draft by default, starting now', async () => {
      const res = await t.call('POST', '/v1/campaigns', {
        key: t.keys.marketing,
        body: { name: 'Ship free', currency: 'GBP', discount: { type: 'free_shipping' } },
      });
      expect(res.statusCode, res.body).toBe(201);
      const read = await t.call('GET', `/v1/campaigns/${res.json().id}`);
      expect(read.json()).toMatchObject({
        discount: { type: 'free_shipping' },
        status: 'draft',
        currency: 'GBP',
        starts_at: new Date(START).toISOString(),
        ends_at: null,
        redemption_cap: null,
        budget_minor: null,
        per_customer_cap: null,
        min_order_minor: null,
        eligibility: { customer_ids: null, segments: null, regions: null, first_order_only: false },
        metadata: {},
      });
    });
  });

  describe('validation errors name the field', () => {
    it('a missing name', async () => {
      const { name: _omit, ...body } = campaignBody();
      await expectInvalid(body, 'name');
    });

    it('a currency that is not an upper-case ISO code', async () => {
      await expectInvalid(campaignBody({ currency: 'usd' }), 'currency');
      await expectInvalid(campaignBody({ currency: 'DOLLARS' }), 'currency');
    });

    it('an unknown field', async () => {
      await expectInvalid({ ...campaignBody(), colour: 'red' }, 'colour');
      await expectInvalid(
        { ...campaignBody(), discount: { type: 'fixed_amount', amount_minor: 500, percent: 5 } },
        'percent',
      );
    });

    it('ends_at not later than starts_at', async () => {
      await expectInvalid(
        campaignBody({ starts_at: '2026-07-01T00:00:00Z', ends_at: '2026-07-01T00:00:00Z' }),
        'ends_at',
      );
      await expectInvalid(
        campaignBody({ starts_at: '2026-07-01T00:00:00Z', ends_at: '2026-06-30T23:59:59Z' }),
        'ends_at',
      );
    });

    it('a timestamp no database holds: a leap second, a zone suffix, or outside years 1 to 9999', async () => {
      for (const [field, value] of [
        ['starts_at', '2026-06-30T23:59:60Z'],
        ['starts_at', '2026-01-01T00:00:00Z[Europe/Paris]'],
        ['starts_at', '0000-01-01T00:00:00Z'],
        ['ends_at', '9999-12-31T23:59:59-23:59'],
      ] as const) {
        const res = await t.call('POST', '/v1/campaigns', { body: campaignBody({ [field]: value }) });
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json().detail).toBe(`body/${field} must be an RFC 3339 date-time from year 1 to 9999`);
      }
    });

    it('reads a timestamp with an offset as the UTC instant it names', async () => {
      const created = await create({ starts_at: '2026-07-01T09:00:00+09:00', ends_at: null });
      expect(created.starts_at).toBe('2026-07-01T00:00:00.000Z');
    });

    it('negative amounts', async () => {
      await expectInvalid(
        campaignBody({ discount: { type: 'fixed_amount', amount_minor: -1 } }),
        'discount/amount_minor',
      );
      await expectInvalid(campaignBody({ budget_minor: -5 }), 'budget_minor');
      await expectInvalid(campaignBody({ min_order_minor: -1 }), 'min_order_minor');
      await expectInvalid(
        campaignBody({ discount: { type: 'percentage', basis_points: 1000, max_discount_minor: -1 } }),
        'max_discount_minor',
      );
    });

    it('basis points of 0 or above 10000', async () => {
      await expectInvalid(
        campaignBody({ discount: { type: 'percentage', basis_points: 0 } }),
        'discount/basis_points',
      );
      await expectInvalid(
        campaignBody({ discount: { type: 'percentage', basis_points: 10_001 } }),
        'discount/basis_points',
      );
    });

    it('nothing is created by a refused request', async () => {
      const before = await t.app.db
        .selectFrom('campaigns')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      await t.call('POST', '/v1/campaigns', { body: campaignBody({ currency: 'usd' }) });
      await t.call('POST', '/v1/campaigns', { body: campaignBody({ ends_at: '2019-01-01T00:00:00Z' }) });
      const after = await t.app.db
        .selectFrom('campaigns')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });
  });

  describe('list', () => {
    it('pages newest first with limit and next_cursor, null on the last page', async () => {
      // Later instants than any other campaign of this file, one second apart: these five are the newest.
      clock.set('2031-01-01T00:00:00Z');
      const mine: string[] = [];
      for (let i = 0; i < 5; i++) {
        clock.advance(1000);
        mine.push((await create({ name: `Paged ${i}` })).id);
      }
      const newestFirst = [...mine].reverse();

      const first = await t.call('GET', '/v1/campaigns?limit=2', { key: t.keys.marketing });
      expect(first.statusCode, first.body).toBe(200);
      expect(first.json().data.map((c: { id: string }) => c.id)).toEqual(newestFirst.slice(0, 2));
      expect(first.json().next_cursor).toBe(newestFirst[1]);

      const second = await t.call('GET', `/v1/campaigns?limit=2&cursor=${first.json().next_cursor}`);
      expect(second.json().data.map((c: { id: string }) => c.id)).toEqual(newestFirst.slice(2, 4));

      // Walk every page: each campaign once, in order, and the last page says so.
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url: string = `/v1/campaigns?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await t.call('GET', url);
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json();
        expect(body.data.length).toBeLessThanOrEqual(3);
        seen.push(...body.data.map((c: { id: string }) => c.id));
        cursor = body.next_cursor;
        pages += 1;
        expect(pages).toBeLessThan(100);
      } while (cursor !== null);
      const total = await t.app.db
        .selectFrom('campaigns')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(seen).toHaveLength(Number(total.n));
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.slice(0, 5)).toEqual(newestFirst);
      expect([...seen].sort().reverse()).toEqual(seen);
    });

    it('filters by status', async () => {
      const draft = await create({ status: 'draft' });
      const active = await create({ status: 'active' });
      const paused = await create({ status: 'active' });
      expect((await t.call('POST', `/v1/campaigns/${paused.id}/pause`)).statusCode).toBe(200);

      const ids = async (status: string) => {
        const res = await t.call('GET', `/v1/campaigns?status=${status}&limit=200`, {
          key: t.keys.marketing,
        });
        expect(res.statusCode, res.body).toBe(200);
        const data = res.json().data as { id: string; status: string }[];
        expect(data.every((c) => c.status === status)).toBe(true);
        return data.map((c) => c.id);
      };
      const drafts = await ids('draft');
      expect(drafts).toContain(draft.id);
      expect(drafts).not.toContain(active.id);
      const paused_ = await ids('paused');
      expect(paused_).toContain(paused.id);
      expect(paused_).not.toContain(active.id);
      expect(await ids('active')).toContain(active.id);
    });

    it('refuses a bad limit or status', async () => {
      for (const query of ['limit=0', 'limit=201', 'status=running', 'cursor=nonsense']) {
        const res = await t.call('GET', `/v1/campaigns?${query}`);
        expect(res.statusCode, query).toBe(400);
        expect(res.json().code).toBe('validation_failed');
      }
    });
  });

  describe('PATCH', () => {
    it('changes the terms, bumps the version, and checkout sees the new terms', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const before = (await t.call('GET', `/v1/campaigns/${campaignId}`)).json();
      expect(before.version).toBe(1);
      expect((await validate(code)).json().discount_minor).toBe(500);

      const res = await t.call('PATCH', `/v1/campaigns/${campaignId}`, {
        key: t.keys.marketing,
        body: {
          name: 'Renamed',
          discount: { type: 'fixed_amount', amount_minor: 700 },
          min_order_minor: 1000,
        },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({
        name: 'Renamed',
        discount: { type: 'fixed_amount', amount_minor: 700 },
        min_order_minor: 1000,
        currency: before.currency,
        starts_at: before.starts_at,
        version: 2,
      });
      expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json()).toEqual(res.json());
      expect((await validate(code)).json().discount_minor).toBe(700);
      expect((await validate(code, { cart: { subtotal_minor: 999 } })).json()).toMatchObject({
        valid: false,
        reason: 'below_minimum_order',
      });

      // null lifts a limit again.
      const lifted = await t.call('PATCH', `/v1/campaigns/${campaignId}`, {
        body: { min_order_minor: null },
      });
      expect(lifted.json()).toMatchObject({ min_order_minor: null, version: 3 });
    });

    it('refuses an empty patch, an unknown field, a currency change and a bad window', async () => {
      const c = await create({ starts_at: '2026-01-01T00:00:00Z' });
      const cases: [Record<string, unknown>, string][] = [
        [{}, 'body'],
        [{ currency: 'EUR' }, 'currency'],
        [{ colour: 'red' }, 'colour'],
        [{ ends_at: '2025-12-31T00:00:00Z' }, 'ends_at'],
      ];
      for (const [body, field] of cases) {
        const res = await t.call('PATCH', `/v1/campaigns/${c.id}`, { body });
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(res.json().code).toBe('validation_failed');
        const fields = (res.json().errors as FieldError[]).map((e) => e.field);
        expect(
          fields.some((f) => f.endsWith(field)),
          JSON.stringify(fields),
        ).toBe(true);
      }
      expect((await t.call('GET', `/v1/campaigns/${c.id}`)).json().version).toBe(1);
    });

    it('moves along draft → active ⇄ paused → ended', async () => {
      const c = await create({ status: 'draft' });
      const patch = (status: string) => t.call('PATCH', `/v1/campaigns/${c.id}`, { body: { status } });

      for (const status of ['active', 'paused', 'active', 'paused', 'ended']) {
        const res = await patch(status);
        expect(res.statusCode, `${status}: ${res.body}`).toBe(200);
        expect(res.json().status).toBe(status);
      }
    });

    it('refuses transitions outside the lifecycle with 409 invalid_status_transition', async () => {
      const draft = await create({ status: 'draft' });
      const toPaused = await t.call('PATCH', `/v1/campaigns/${draft.id}`, { body: { status: 'paused' } });
      expect(toPaused.statusCode, toPaused.body).toBe(409);
      expect(toPaused.json()).toMatchObject({
        code: 'invalid_status_transition',
        from: 'draft',
        to: 'paused',
      });
      const pause = await t.call('POST', `/v1/campaigns/${draft.id}/pause`);
      expect(pause.statusCode, pause.body).toBe(409);
      expect(pause.json().code).toBe('invalid_status_transition');

      const active = await create({ status: 'active' });
      const toDraft = await t.call('PATCH', `/v1/campaigns/${active.id}`, { body: { status: 'draft' } });
      expect(toDraft.statusCode, toDraft.body).toBe(409);
      expect(toDraft.json().code).toBe('invalid_status_transition');

      // Nothing changed.
      expect((await t.call('GET', `/v1/campaigns/${draft.id}`)).json().status).toBe('draft');
      expect((await t.call('GET', `/v1/campaigns/${active.id}`)).json().status).toBe('active');
    });

    it('an ended campaign cannot be edited, reopened, paused or given codes', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const end = await t.call('PATCH', `/v1/campaigns/${campaignId}`, { body: { status: 'ended' } });
      expect(end.statusCode, end.body).toBe(200);

      for (const body of [{ name: 'Again' }, { status: 'active' }, { status: 'ended' }]) {
        const res = await t.call('PATCH', `/v1/campaigns/${campaignId}`, { body });
        expect(res.statusCode, JSON.stringify(body)).toBe(409);
        expect(res.json().code).toBe('campaign_not_editable');
      }
      for (const action of ['resume', 'pause']) {
        const res = await t.call('POST', `/v1/campaigns/${campaignId}/${action}`);
        expect(res.statusCode, `${action}: ${res.body}`).toBe(409);
        expect(res.json().code).toBe('invalid_status_transition');
      }
      const addCode = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        body: { code: unique('END') },
      });
      expect(addCode.statusCode, addCode.body).toBe(409);
      expect(addCode.json().code).toBe('campaign_not_editable');

      const read = (await t.call('GET', `/v1/campaigns/${campaignId}`)).json();
      expect(read).toMatchObject({ status: 'ended', name: 'Summer sale', version: 1 });
      expect((await validate(code)).json()).toMatchObject({ valid: false, reason: 'campaign_ended' });
    });
  });

  describe('pause and resume', () => {
    it('a pause refuses the very next redemption; a resume makes the code work again', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      expect((await redeem(code)).statusCode).toBe(201);

      const paused = await t.call('POST', `/v1/campaigns/${campaignId}/pause`, {
        key: t.keys.marketing,
        body: { reason: 'abuse on a forum' },
      });
      expect(paused.statusCode, paused.body).toBe(200);
      expect(paused.json().status).toBe('paused');

      const refused = await redeem(code, { customer: { id: 'cus_2' } });
      expect(refused.statusCode, refused.body).toBe(422);
      expect(refused.json()).toMatchObject({ code: 'redemption_refused', reason: 'campaign_paused' });
      expect((await validate(code)).json()).toMatchObject({ valid: false, reason: 'campaign_paused' });

      // Pausing again is harmless.
      expect((await t.call('POST', `/v1/campaigns/${campaignId}/pause`)).statusCode).toBe(200);

      const resumed = await t.call('POST', `/v1/campaigns/${campaignId}/resume`, {
        key: t.keys.marketing,
        body: { reason: 'forum post removed' },
      });
      expect(resumed.statusCode, resumed.body).toBe(200);
      expect(resumed.json().status).toBe('active');
      const again = await redeem(code, { customer: { id: 'cus_2' } });
      expect(again.statusCode, again.body).toBe(201);

      const campaign = (await t.call('GET', `/v1/campaigns/${campaignId}`)).json();
      expect(campaign).toMatchObject({ redemptions_used: 2, spent_minor: 1000, status: 'active' });
    });

    it('writes audit_log rows with the API key id as actor and the reason', async () => {
      const c = await create({ status: 'active' });
      const marketingKey = await t.app.apiKeys.verify(t.keys.marketing);
      const adminKey = await t.app.apiKeys.verify(t.keys.admin);
      expect(marketingKey).not.toBeNull();
      expect(adminKey).not.toBeNull();

      await t.call('POST', `/v1/campaigns/${c.id}/pause`, {
        key: t.keys.marketing,
        body: { reason: 'suspicious spike' },
      });
      await t.call('POST', `/v1/campaigns/${c.id}/resume`, {
        key: t.keys.admin,
        body: { reason: 'false alarm' },
      });
      // No body at all is fine; the reason is then absent.
      await t.call('POST', `/v1/campaigns/${c.id}/pause`, { key: t.keys.marketing });

      const rows = await t.app.db
        .selectFrom('audit_log')
        .selectAll()
        .where('target_id', '=', c.id)
        .where('action', '!=', 'campaign.created')
        .orderBy('id')
        .execute();
      expect(rows).toHaveLength(3);
      expect(rows[0]).toMatchObject({
        actor: marketingKey?.id,
        action: 'campaign.paused',
        reason: 'suspicious spike',
      });
      expect(rows[1]).toMatchObject({ actor: adminKey?.id, reason: 'false alarm' });
      expect(rows[1]?.action).not.toBe('campaign.paused');
      expect(rows[2]).toMatchObject({ actor: marketingKey?.id, action: 'campaign.paused', reason: null });
    });

    it('refuses a reason that is not text', async () => {
      const c = await create({ status: 'active' });
      const res = await t.call('POST', `/v1/campaigns/${c.id}/pause`, { body: { reason: 42 } });
      expect(res.statusCode).toBe(400);
      const extra = await t.call('POST', `/v1/campaigns/${c.id}/pause`, { body: { why: 'x' } });
      expect(extra.statusCode).toBe(400);
      expect((await t.call('GET', `/v1/campaigns/${c.id}`)).json().status).toBe('active');
    });
  });

  it('answers 404 campaign_not_found for an unknown campaign on every campaign route', async () => {
    const requests: [string, string, unknown?][] = [
      ['GET', `/v1/campaigns/${UNKNOWN_CAMPAIGN}`],
      ['PATCH', `/v1/campaigns/${UNKNOWN_CAMPAIGN}`, { name: 'x' }],
      ['POST', `/v1/campaigns/${UNKNOWN_CAMPAIGN}/pause`, {}],
      ['POST', `/v1/campaigns/${UNKNOWN_CAMPAIGN}/resume`, {}],
      ['GET', `/v1/campaigns/${UNKNOWN_CAMPAIGN}/codes`],
      ['POST', `/v1/campaigns/${UNKNOWN_CAMPAIGN}/codes`, { code: 'NOCAMPAIGN1' }],
    ];
    for (const [method, url, body] of requests) {
      const res = await t.call(method as 'GET', url, body === undefined ? {} : { body });
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'campaign_not_found', status: 404 });
    }
    // Not an id at all: the request itself is invalid.
    const malformed = await t.call('GET', '/v1/campaigns/summer');
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('validation_failed');
  });
});
