/**
 * Validation, redemption and rollback through the HTTP API: every main refusal reason, the discount
 * arithmetic a customer sees, the campaign window at its edges, idempotency, rollback, reading
 * redemptions back, the ledger they write and the events they emit.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { normalizeCode } from '../../src/domain/codes.js';
import type { DomainEvent } from '../../src/domain/events.js';
import { requestFingerprint } from '../../src/lib/fingerprint.js';
import {
  type CampaignCreateBody,
  type CheckoutOverrides,
  type CodeBody,
  campaignBody,
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const NOW = '2026-06-01T12:00:00Z';
/** A well-formed redemption id that no redemption has. */
const UNKNOWN_REDEMPTION = 'red_01ARZ3NDEKTSV4RRFFQ69G5FAV';

interface RedemptionJson {
  id: string;
  status: 'redeemed' | 'rolled_back';
  campaign_id: string;
  code_id: string;
  customer_id: string;
  order_id: string | null;
  currency: string;
  subtotal_minor: number;
  discount_minor: number;
  created_at: string;
  rolled_back_at: string | null;
  rollback_reason: string | null;
}

describe.each(backends.map((b) => [b.name, b] as const))('redemptions API on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date(NOW));
  const events: DomainEvent[] = [];

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    t.app.bus.subscribe((event) => {
      events.push(event);
    });
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(NOW));

  function validate(code: string, overrides: CheckoutOverrides = {}) {
    return t.call('POST', '/v1/validations', { key: t.keys.checkout, body: checkoutBody(code, overrides) });
  }

  function redeem(code: string, overrides: CheckoutOverrides = {}, key: string = unique('idem-')) {
    return t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, overrides),
      headers: { 'idempotency-key': key },
    });
  }

  async function redeemOk(code: string, overrides: CheckoutOverrides = {}): Promise<RedemptionJson> {
    const res = await redeem(code, overrides);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

  function rollback(id: string, body?: unknown) {
    return t.call('POST', `/v1/redemptions/${id}/rollback`, {
      key: t.keys.checkout,
      ...(body === undefined ? {} : { body }),
    });
  }

  async function campaign(id: string) {
    const res = await t.call('GET', `/v1/campaigns/${id}`, { key: t.keys.marketing });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  async function codeUses(campaignId: string): Promise<number[]> {
    const res = await t.call('GET', `/v1/campaigns/${campaignId}/codes`, { key: t.keys.marketing });
    return res.json().data.map((c: { uses: number }) => c.uses);
  }

  function ledger(redemptionId: string) {
    return t.app.db
      .selectFrom('ledger_entries')
      .select(['account', 'amount_minor', 'currency', 'entry_type'])
      .where('redemption_id', '=', redemptionId)
      .orderBy('id')
      .execute()
      .then((rows) => rows.map((r) => ({ ...r, amount_minor: Number(r.amount_minor) })));
  }

  /** The events matching `match`, once the relay has delivered at least `count` of them. */
  async function delivered(match: (e: DomainEvent) => boolean, count = 1): Promise<DomainEvent[]> {
    return vi.waitFor(
      async () => {
        await t.app.relay.drain();
        const found = events.filter(match);
        if (found.length < count) throw new Error(`${found.length} of ${count} events delivered`);
        return found;
      },
      { timeout: 10_000, interval: 20 },
    );
  }

  describe('refusals', () => {
    type Setup = () => Promise<{ code: string; body?: CheckoutOverrides }>;
    const withCode =
      (campaign: Partial<CampaignCreateBody>, body?: CheckoutOverrides, code: Partial<CodeBody> = {}) =>
      async () => ({ ...(await campaignWithCode(t, campaign, code)), ...(body ? { body } : {}) });

    const cases: [string, Setup][] = [
      ['code_not_found', async () => ({ code: 'NEVER-ISSUED-42' })],
      [
        'code_revoked',
        async () => {
          const { code } = await campaignWithCode(t);
          expect((await t.call('POST', `/v1/codes/${code}/revoke`)).statusCode).toBe(200);
          return { code };
        },
      ],
      [
        'code_used_up',
        async () => {
          const { code } = await campaignWithCode(t, {}, { max_uses: 1 });
          await redeemOk(code, { customer: { id: 'cus_first' } });
          return { code };
        },
      ],
      ['code_bound_to_other_customer', withCode({}, undefined, { customer_id: 'cus_owner' })],
      ['campaign_not_active', withCode({ status: 'draft' })],
      [
        'campaign_paused',
        async () => {
          const { campaignId, code } = await campaignWithCode(t);
          expect((await t.call('POST', `/v1/campaigns/${campaignId}/pause`)).statusCode).toBe(200);
          return { code };
        },
      ],
      [
        'campaign_ended',
        async () => {
          const { campaignId, code } = await campaignWithCode(t);
          const end = await t.call('PATCH', `/v1/campaigns/${campaignId}`, { body: { status: 'ended' } });
          expect(end.statusCode).toBe(200);
          return { code };
        },
      ],
      ['campaign_not_started', withCode({ starts_at: '2026-07-01T00:00:00Z' })],
      ['campaign_expired', withCode({ starts_at: '2026-01-01T00:00:00Z', ends_at: '2026-05-01T00:00:00Z' })],
      ['customer_not_eligible', withCode({ eligibility: { customer_ids: ['cus_vip'] } })],
      [
        'segment_not_eligible',
        withCode({ eligibility: { segments: ['gold'] } }, { customer: { segment: 'silver' } }),
      ],
      ['region_not_eligible', withCode({ eligibility: { regions: ['EU'] } }, { customer: { region: 'US' } })],
      [
        'not_first_order',
        withCode({ eligibility: { first_order_only: true } }, { customer: { first_order: false } }),
      ],
      ['currency_mismatch', withCode({ currency: 'USD' }, { cart: { currency: 'EUR' } })],
      ['below_minimum_order', withCode({ min_order_minor: 3000 }, { cart: { subtotal_minor: 2999 } })],
      ['campaign_cap_reached', withCode({ redemption_cap: 0 })],
      ['budget_exhausted', withCode({ budget_minor: 499 })],
      [
        'customer_cap_reached',
        async () => {
          const { code } = await campaignWithCode(t, { per_customer_cap: 1 });
          await redeemOk(code);
          return { code };
        },
      ],
    ];

    it.each(cases)('%s: validation says why, redemption is a 422 with that reason', async (reason, setup) => {
      const { code, body = {} } = await setup();
      const before = await t.app.db
        .selectFrom('redemptions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();

      const v = await validate(code, body);
      expect(v.statusCode, v.body).toBe(200);
      expect(v.json()).toEqual({ valid: false, reason, message: 'This code cannot be used' });

      const r = await redeem(code, body);
      expect(r.statusCode, r.body).toBe(422);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json()).toMatchObject({
        type: 'urn:promoguard:problem:redemption_refused',
        status: 422,
        code: 'redemption_refused',
        detail: 'This code cannot be used',
        reason,
        request_id: r.headers['x-request-id'],
      });
      // Refusals change nothing and are not stored.
      const after = await t.app.db
        .selectFrom('redemptions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });

    it('the eligible alternatives of those refusals are accepted', async () => {
      const { code } = await campaignWithCode(t, {
        eligibility: {
          customer_ids: ['cus_vip'],
          segments: ['gold'],
          regions: ['EU'],
          first_order_only: true,
        },
        min_order_minor: 3000,
      });
      const ok = await validate(code, {
        customer: { id: 'cus_vip', segment: 'gold', region: 'EU', first_order: true },
        cart: { subtotal_minor: 3000 },
      });
      expect(ok.json()).toMatchObject({ valid: true, discount_minor: 500 });
    });
  });

  describe('validation', () => {
    it('answers the success shape and changes nothing, however often it is asked', async () => {
      const { campaignId, code } = await campaignWithCode(
        t,
        { redemption_cap: 1, per_customer_cap: 1 },
        { max_uses: 1 },
      );
      for (let i = 0; i < 25; i++) {
        const res = await validate(code);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({
          valid: true,
          discount_minor: 500,
          currency: 'USD',
          campaign_id: campaignId,
          decision: expect.objectContaining({ action: 'allow', because: [] }),
        });
      }
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 0, spent_minor: 0 });
      expect(await codeUses(campaignId)).toEqual([0]);
      const listed = await t.call('GET', `/v1/redemptions?campaign_id=${campaignId}`, {
        key: t.keys.checkout,
      });
      expect(listed.json().data).toEqual([]);
      // The single use, the cap and the customer's one redemption are all still there.
      expect((await redeem(code)).statusCode).toBe(201);
    });

    it('rounds percentages half to even', async () => {
      const { code } = await campaignWithCode(t, { discount: { type: 'percentage', basis_points: 1250 } });
      const cases: [number, number][] = [
        [10_050, 1256], // 1256.25
        [12, 2], // 1.5 -> 2
        [20, 2], // 2.5 -> 2
        [36, 4], // 4.5 -> 4
        [44, 6], // 5.5 -> 6
        [4, 0], // 0.5 -> 0
        [0, 0],
      ];
      for (const [subtotal, discount] of cases) {
        const res = await validate(code, { cart: { subtotal_minor: subtotal } });
        expect(res.json(), `subtotal ${subtotal}`).toMatchObject({ valid: true, discount_minor: discount });
      }
      const redeemed = await redeemOk(code, { cart: { subtotal_minor: 10_050 } });
      expect(redeemed).toMatchObject({ subtotal_minor: 10_050, discount_minor: 1256 });
    });

    it('caps a percentage at its maximum and any discount at the subtotal', async () => {
      const pct = await campaignWithCode(t, {
        discount: { type: 'percentage', basis_points: 1500, max_discount_minor: 2000 },
      });
      expect((await validate(pct.code, { cart: { subtotal_minor: 8000 } })).json().discount_minor).toBe(1200);
      expect((await validate(pct.code, { cart: { subtotal_minor: 13_333 } })).json().discount_minor).toBe(
        2000,
      );
      expect((await validate(pct.code, { cart: { subtotal_minor: 1_000_000 } })).json().discount_minor).toBe(
        2000,
      );

      const fixed = await campaignWithCode(t, { discount: { type: 'fixed_amount', amount_minor: 500 } });
      expect((await validate(fixed.code, { cart: { subtotal_minor: 300 } })).json().discount_minor).toBe(300);

      const ship = await campaignWithCode(t, { discount: { type: 'free_shipping' } });
      expect(
        (await validate(ship.code, { cart: { subtotal_minor: 100, shipping_minor: 799 } })).json()
          .discount_minor,
      ).toBe(799);
    });

    it('applies the minimum order from exactly the minimum', async () => {
      const { code } = await campaignWithCode(t, { min_order_minor: 3000 });
      expect((await validate(code, { cart: { subtotal_minor: 2999 } })).json().reason).toBe(
        'below_minimum_order',
      );
      expect((await validate(code, { cart: { subtotal_minor: 3000 } })).json().valid).toBe(true);
    });

    it('refuses a cart in another currency', async () => {
      const { code } = await campaignWithCode(t, { currency: 'EUR' });
      expect((await validate(code, { cart: { currency: 'USD' } })).json().reason).toBe('currency_mismatch');
      expect((await validate(code, { cart: { currency: 'EUR' } })).json()).toMatchObject({
        valid: true,
        currency: 'EUR',
      });
    });

    it('opens the window at starts_at and closes it at exactly ends_at', async () => {
      const { code } = await campaignWithCode(t, {
        starts_at: '2026-07-01T00:00:00Z',
        ends_at: '2026-07-31T00:00:00Z',
      });
      clock.set('2026-06-30T23:59:59.999Z');
      expect((await validate(code)).json().reason).toBe('campaign_not_started');
      const early = await redeem(code);
      expect(early.statusCode).toBe(422);
      expect(early.json().reason).toBe('campaign_not_started');

      clock.set('2026-07-01T00:00:00.000Z');
      expect((await validate(code)).json().valid).toBe(true);

      clock.set('2026-07-30T23:59:59.999Z');
      expect((await validate(code)).json().valid).toBe(true);
      await redeemOk(code, { customer: { id: 'cus_last_ms' } });

      clock.set('2026-07-31T00:00:00.000Z');
      expect((await validate(code)).json().reason).toBe('campaign_expired');
      const late = await redeem(code);
      expect(late.statusCode).toBe(422);
      expect(late.json().reason).toBe('campaign_expired');
    });

    it('refuses a malformed checkout body with 400 naming the field', async () => {
      const res = await t.call('POST', '/v1/validations', {
        key: t.keys.checkout,
        body: { ...checkoutBody('X'), cart: { currency: 'USD', subtotal_minor: 10.5 } },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('validation_failed');
      expect(res.json().errors.map((e: { field: string }) => e.field)).toContain('body/cart/subtotal_minor');
    });
  });

  describe('idempotency', () => {
    it('a redemption without an Idempotency-Key is 400 idempotency_key_required', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const res = await t.call('POST', '/v1/redemptions', { key: t.keys.checkout, body: checkoutBody(code) });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().code).toBe('idempotency_key_required');
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 0 });
    });

    it('a repeat returns the same redemption with idempotent-replayed: true and changes nothing', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const key = unique('order-');
      const body = { order_id: '1001', customer: { id: 'cus_rep' } };
      const first = await redeem(code, body, key);
      expect(first.statusCode, first.body).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(first.json()).toMatchObject({
        status: 'redeemed',
        campaign_id: campaignId,
        customer_id: 'cus_rep',
        order_id: '1001',
        currency: 'USD',
        subtotal_minor: 10_000,
        discount_minor: 500,
        rolled_back_at: null,
      });
      expect(first.json().id).toMatch(/^red_[0-9A-HJKMNP-TV-Z]{26}$/);

      for (let i = 0; i < 3; i++) {
        const again = await redeem(code, body, key);
        expect(again.statusCode, again.body).toBe(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.json()).toEqual(first.json());
      }
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 1, spent_minor: 500 });
      expect(await codeUses(campaignId)).toEqual([1]);
      expect(await ledger(first.json().id)).toHaveLength(2);
    });

    it('the same key with a different request is 422 idempotency_key_reused', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const key = unique('order-');
      expect((await redeem(code, {}, key)).statusCode).toBe(201);
      for (const changed of [
        { cart: { subtotal_minor: 12_000 } },
        { cart: { shipping_minor: 700 } },
        { cart: { items: [{ sku: 'SKU-1', quantity: 2, unit_price_minor: 5000 }] } },
        { customer: { id: 'cus_someone_else' } },
        { customer: { segment: 'vip' } },
        { customer: { first_order: true } },
        { order_id: 'another-order' },
        { context: { ip: '203.0.113.7' } },
        { context: { payment_fingerprint: 'tok_card_other' } },
        { context: { device_id: 'device-other' } },
      ] satisfies CheckoutOverrides[]) {
        const res = await redeem(code, changed, key);
        expect(res.statusCode, JSON.stringify(changed)).toBe(422);
        expect(res.json().code).toBe('idempotency_key_reused');
      }
      const otherCode = await campaignWithCode(t);
      const res = await redeem(otherCode.code, {}, key);
      expect(res.statusCode).toBe(422);
      expect(res.json().code).toBe('idempotency_key_reused');
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 1 });
      expect(await campaign(otherCode.campaignId)).toMatchObject({ redemptions_used: 0 });
    });

    it('the same request with its fields in another order replays; so does a redemption fingerprinted by its first six fields', async () => {
      const { code } = await campaignWithCode(t);
      const key = unique('order-');
      const body = checkoutBody(code, {
        context: { ip: '198.51.100.4', device_id: 'dev-1' },
        cart: { items: [{ sku: 'A', quantity: 1, unit_price_minor: 10_000 }] },
      });
      const first = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body,
        headers: { 'idempotency-key': key },
      });
      expect(first.statusCode, first.body).toBe(201);
      const reordered = JSON.parse(
        JSON.stringify({ context: body.context, cart: body.cart, customer: body.customer, code: body.code }),
      );
      const again = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: reordered,
        headers: { 'idempotency-key': key },
      });
      expect(again.statusCode, again.body).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');

      // A redemption stored with the older digest (code, customer id, currency, subtotal, shipping,
      // order) still replays for the same request, and a different cart is still refused.
      const legacy = requestFingerprint([normalizeCode(code), 'cus_1', 'USD', 10_000, 0, null]);
      await t.app.db
        .updateTable('redemptions')
        .set({ request_fingerprint: legacy })
        .where('id', '=', first.json().id)
        .execute();
      const old = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body,
        headers: { 'idempotency-key': key },
      });
      expect(old.statusCode, old.body).toBe(201);
      const changed = await redeem(code, { cart: { subtotal_minor: 9_000 } }, key);
      expect(changed.json().code).toBe('idempotency_key_reused');
    });

    it('a refused attempt does not use up its key', async () => {
      const { code } = await campaignWithCode(t, { min_order_minor: 3000 });
      const key = unique('order-');
      const refused = await redeem(code, { cart: { subtotal_minor: 100 } }, key);
      expect(refused.statusCode).toBe(422);
      expect(refused.json().reason).toBe('below_minimum_order');
      const fixed = await redeem(code, { cart: { subtotal_minor: 5000 } }, key);
      expect(fixed.statusCode, fixed.body).toBe(201);
      expect(fixed.headers['idempotent-replayed']).toBeUndefined();
    });
  });

  describe('rollback', () => {
    it('restores every counter; a second rollback is harmless and writes no second reversal', async () => {
      const { campaignId, code } = await campaignWithCode(
        t,
        { per_customer_cap: 1, redemption_cap: 5, budget_minor: 5000 },
        { max_uses: 3 },
      );
      const r = await redeemOk(code, { customer: { id: 'cus_rb' } });
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 1, spent_minor: 500 });
      expect(await codeUses(campaignId)).toEqual([1]);
      expect((await validate(code, { customer: { id: 'cus_rb' } })).json().reason).toBe(
        'customer_cap_reached',
      );

      clock.advance(60_000);
      const first = await rollback(r.id, { reason: 'order cancelled' });
      expect(first.statusCode, first.body).toBe(200);
      expect(first.json()).toMatchObject({
        id: r.id,
        status: 'rolled_back',
        rollback_reason: 'order cancelled',
        rolled_back_at: '2026-06-01T12:01:00.000Z',
        discount_minor: 500,
      });
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 0, spent_minor: 0 });
      expect(await codeUses(campaignId)).toEqual([0]);

      clock.advance(60_000);
      const second = await rollback(r.id, { reason: 'again' });
      expect(second.statusCode, second.body).toBe(200);
      expect(second.json()).toEqual(first.json());
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 0, spent_minor: 0 });
      expect(await codeUses(campaignId)).toEqual([0]);

      // The customer's count came back too: they may redeem once more.
      expect((await validate(code, { customer: { id: 'cus_rb' } })).json().valid).toBe(true);

      const entries = await ledger(r.id);
      expect(entries).toEqual([
        { account: 'promo_expense', amount_minor: 500, currency: 'USD', entry_type: 'redemption' },
        { account: 'campaign_budget', amount_minor: -500, currency: 'USD', entry_type: 'redemption' },
        { account: 'promo_expense', amount_minor: -500, currency: 'USD', entry_type: 'reversal' },
        { account: 'campaign_budget', amount_minor: 500, currency: 'USD', entry_type: 'reversal' },
      ]);
    });

    it('needs no body', async () => {
      const { code } = await campaignWithCode(t);
      const r = await redeemOk(code);
      const res = await rollback(r.id);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ status: 'rolled_back', rollback_reason: null });
    });

    it('answers 404 redemption_not_found for an unknown redemption', async () => {
      const res = await rollback(UNKNOWN_REDEMPTION, { reason: 'x' });
      expect(res.statusCode, res.body).toBe(404);
      expect(res.json().code).toBe('redemption_not_found');
      const read = await t.call('GET', `/v1/redemptions/${UNKNOWN_REDEMPTION}`, { key: t.keys.checkout });
      expect(read.statusCode).toBe(404);
      expect(read.json().code).toBe('redemption_not_found');
    });

    it('frees a single-use code to be redeemed again', async () => {
      const { campaignId, code } = await campaignWithCode(t, {}, { max_uses: 1 });
      const r = await redeemOk(code);
      expect((await redeem(code)).json().reason).toBe('code_used_up');
      expect((await rollback(r.id)).statusCode).toBe(200);
      const again = await redeemOk(code, { customer: { id: 'cus_second_try' } });
      expect(again.id).not.toBe(r.id);
      expect(await codeUses(campaignId)).toEqual([1]);
      expect(await campaign(campaignId)).toMatchObject({ redemptions_used: 1, spent_minor: 500 });
    });
  });

  describe('reading redemptions', () => {
    it('GET one redemption, with a checkout or a marketing key', async () => {
      const { code } = await campaignWithCode(t);
      const r = await redeemOk(code, { order_id: 'ord-77' });
      for (const key of [t.keys.checkout, t.keys.marketing, t.keys.admin]) {
        const res = await t.call('GET', `/v1/redemptions/${r.id}`, { key });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual(r);
      }
    });

    it('lists by campaign and by customer, newest first, in pages', async () => {
      const a = await campaignWithCode(t);
      const b = await campaignWithCode(t);
      const customer = unique('cus_list_');
      const made: RedemptionJson[] = [];
      for (let i = 0; i < 5; i++) {
        clock.advance(1000);
        made.push(await redeemOk(a.code, { customer: { id: i % 2 === 0 ? customer : `cus_other_${i}` } }));
      }
      clock.advance(1000);
      made.push(await redeemOk(b.code, { customer: { id: customer } }));

      async function walk(query: string, limit: number): Promise<{ ids: string[]; sizes: number[] }> {
        const ids: string[] = [];
        const sizes: number[] = [];
        let cursor: string | null = null;
        do {
          const url: string = `/v1/redemptions?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
          const res = await t.call('GET', url, { key: t.keys.marketing });
          expect(res.statusCode, res.body).toBe(200);
          const page = res.json();
          sizes.push(page.data.length);
          ids.push(...page.data.map((r: RedemptionJson) => r.id));
          cursor = page.next_cursor;
        } while (cursor !== null && sizes.length < 20);
        return { ids, sizes };
      }

      const byCampaign = await walk(`campaign_id=${a.campaignId}`, 2);
      expect(byCampaign.ids).toEqual(
        made
          .slice(0, 5)
          .map((r) => r.id)
          .reverse(),
      );
      expect(byCampaign.sizes).toEqual([2, 2, 1]);

      const byCustomer = await walk(`customer_id=${customer}`, 2);
      const mine = made.filter((r) => r.customer_id === customer).map((r) => r.id);
      expect(byCustomer.ids).toEqual([...mine].reverse());
      expect(mine).toHaveLength(4);

      const both = await walk(`customer_id=${customer}&campaign_id=${b.campaignId}`, 10);
      expect(both.ids).toEqual([made[5]?.id]);
    });
  });

  describe('ledger', () => {
    it('a redemption writes promo_expense +d and campaign_budget -d', async () => {
      const { code } = await campaignWithCode(t, { discount: { type: 'percentage', basis_points: 1250 } });
      const r = await redeemOk(code, { cart: { subtotal_minor: 10_050 } });
      expect(await ledger(r.id)).toEqual([
        { account: 'promo_expense', amount_minor: 1256, currency: 'USD', entry_type: 'redemption' },
        { account: 'campaign_budget', amount_minor: -1256, currency: 'USD', entry_type: 'redemption' },
      ]);
    });

    it('the database refuses to update or delete a ledger entry', async () => {
      const { code } = await campaignWithCode(t);
      const r = await redeemOk(code);
      await expect(
        t.app.db
          .updateTable('ledger_entries')
          .set({ amount_minor: 0 })
          .where('redemption_id', '=', r.id)
          .execute(),
      ).rejects.toThrow(/immutable/);
      await expect(
        t.app.db.deleteFrom('ledger_entries').where('redemption_id', '=', r.id).execute(),
      ).rejects.toThrow(/immutable/);
      expect(await ledger(r.id)).toHaveLength(2);
      expect((await ledger(r.id)).map((e) => e.amount_minor)).toEqual([500, -500]);
    });
  });

  describe('events', () => {
    it('campaign.created, code.revoked, redemption.created and redemption.rolled_back reach the bus with ids', async () => {
      const created = await t.call('POST', '/v1/campaigns', { key: t.keys.marketing, body: campaignBody() });
      const campaignId = created.json().id as string;
      const codeText = unique('EVT');
      const codeRes = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code: codeText } });
      const codeId = codeRes.json().id as string;
      const r = await redeemOk(codeText);
      expect((await rollback(r.id, { reason: 'cancelled' })).statusCode).toBe(200);
      expect(
        (await t.call('POST', `/v1/codes/${codeText}/revoke`, { body: { reason: 'leak' } })).statusCode,
      ).toBe(200);

      const [campaignCreated] = await delivered(
        (e) => e.type === 'campaign.created' && e.aggregateId === campaignId,
      );
      const [redemptionCreated] = await delivered(
        (e) => e.type === 'redemption.created' && e.aggregateId === r.id,
      );
      const [rolledBack] = await delivered(
        (e) => e.type === 'redemption.rolled_back' && e.aggregateId === r.id,
      );
      const [revoked] = await delivered((e) => e.type === 'code.revoked' && e.aggregateId === codeId);

      const mine = [campaignCreated, redemptionCreated, rolledBack, revoked] as DomainEvent[];
      for (const e of mine) expect(e.id).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(new Set(mine.map((e) => e.id)).size).toBe(4);

      expect(campaignCreated?.payload).toMatchObject({ campaign: { id: campaignId } });
      expect(redemptionCreated?.payload).toMatchObject({
        redemption: { id: r.id, campaign_id: campaignId, discount_minor: 500 },
      });
      expect(rolledBack?.payload).toMatchObject({
        redemption: { id: r.id, status: 'rolled_back', rollback_reason: 'cancelled' },
      });
      expect(revoked?.payload).toMatchObject({ code_id: codeId, campaign_id: campaignId, reason: 'leak' });

      // Repeats that change nothing emit nothing.
      expect((await rollback(r.id)).statusCode).toBe(200);
      expect((await t.call('POST', `/v1/codes/${codeText}/revoke`)).statusCode).toBe(200);
      await t.app.relay.drain();
      expect(
        events.filter((e) => e.type === 'redemption.rolled_back' && e.aggregateId === r.id),
      ).toHaveLength(1);
      expect(events.filter((e) => e.type === 'code.revoked' && e.aggregateId === codeId)).toHaveLength(1);
    });
  });
});
