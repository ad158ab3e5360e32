/**
 * A review rule's `hold_with`, through the real HTTP app on every database backend: when the shipped
 * referral-ring rule holds a fresh account, the code's earlier fresh-account redemptions of the day
 * are held with it (an established customer's, a rolled-back one and another code's are not), each
 * once, with an audit entry and a `redemption.held` event; the flood rule reaches the campaign's last
 * hour. The rule API refuses `hold_with` on anything but a review rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionOf, redeem } from '../risk/helpers.js';
import {
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const HOUR = 3_600_000;
const ageHours = (clock: TestClock, hours: number) =>
  new Date(clock.now().getTime() - hours * HOUR).toISOString();

describe.each(backends.map((b) => [b.name, b] as const))(
  'holds that reach earlier redemptions on %s',
  (_name, backend) => {
    let t: TestApp;
    let clock: TestClock;
    beforeAll(async () => {
      clock = new TestClock(NOW);
      t = await startTestApp(backend, { clock });
    });
    afterAll(async () => t?.close());

    const reviewStatus = async (id: string) =>
      (await t.call('GET', `/v1/redemptions/${id}`)).json().review_status;
    const heldEvents = (id: string) =>
      t.app.db
        .selectFrom('outbox')
        .select(['type', 'payload'])
        .where('aggregate_id', '=', id)
        .where('type', '=', 'redemption.held')
        .execute();

    it("holds a referral code's earlier fresh accounts of the day with the one the ring rule holds", async () => {
      clock.set(NOW.toISOString());
      const { campaignId, code } = await campaignWithCode(t, {}, { max_uses: 20 });
      const other = unique('REF');
      expect(
        (await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code: other, max_uses: 20 } }))
          .statusCode,
      ).toBe(201);
      const fresh = () => ({ context: { account_created_at: ageHours(clock, 1) } });

      const first = await redeem(t, code, unique('cus_ring'), fresh());
      clock.advance(HOUR);
      const established = await redeem(t, code, unique('cus_old'), {
        context: { account_created_at: ageHours(clock, 24 * 300) },
      });
      const elsewhere = await redeem(t, other, unique('cus_else'), fresh());
      for (const r of [first, established, elsewhere]) expect(decisionOf(r).action, r.body).toBe('allow');
      clock.advance(2 * HOUR);

      const second = await redeem(t, code, unique('cus_ring'), fresh());
      expect(second.statusCode, second.body).toBe(201);
      expect(decisionOf(second).because).toContain('rule_default_referral_ring');
      expect(second.json().review_status).toBe('pending');

      expect(await reviewStatus(first.json().id)).toBe('pending');
      expect(await reviewStatus(established.json().id)).toBeNull();
      expect(await reviewStatus(elsewhere.json().id)).toBeNull();

      const events = await heldEvents(first.json().id);
      expect(events).toHaveLength(1);
      const payload =
        typeof events[0]?.payload === 'string' ? JSON.parse(events[0].payload) : events[0]?.payload;
      expect(payload).toMatchObject({
        held_with: second.json().id,
        hold_with: 'code_new_accounts_24h',
        rule_ids: ['rule_default_referral_ring'],
        redemption: { id: first.json().id, review_status: 'pending', campaign_id: campaignId },
      });
      expect(payload.redemption).not.toHaveProperty('context');
      const audit = await t.call('GET', `/v1/audit?action=review.held&resource=${first.json().id}`);
      expect(audit.statusCode, audit.body).toBe(200);
      expect(audit.json().data).toHaveLength(1);
      expect(audit.json().data[0]).toMatchObject({
        actor: 'promoguard',
        details: { held_with: second.json().id },
      });

      // The next ring member is held too; the ones already waiting are not held (nor announced) again.
      const third = await redeem(t, code, unique('cus_ring'), fresh());
      expect(third.json().review_status).toBe('pending');
      expect(await heldEvents(first.json().id)).toHaveLength(1);
      expect(await heldEvents(second.json().id)).toHaveLength(0);
    });

    it('leaves a decided review as the analyst decided it', async () => {
      clock.set(NOW.toISOString());
      const { code } = await campaignWithCode(t, {}, { max_uses: 20 });
      const fresh = () => ({ context: { account_created_at: ageHours(clock, 1) } });
      await redeem(t, code, unique('cus_a'), fresh());
      const held = await redeem(t, code, unique('cus_b'), fresh());
      expect(held.json().review_status).toBe('pending');
      const approved = await t.call('POST', `/v1/reviews/${held.json().id}/approve`, {
        body: { note: 'a friend' },
      });
      expect(approved.statusCode, approved.body).toBe(200);
      const next = await redeem(t, code, unique('cus_c'), fresh());
      expect(next.json().review_status).toBe('pending');
      expect(await reviewStatus(held.json().id)).toBe('approved');
    });

    it('holds an earlier redemption once when a ring redeems at the same moment', async () => {
      clock.set(NOW.toISOString());
      const { code } = await campaignWithCode(t, {}, { max_uses: 50 });
      const fresh = () => ({ context: { account_created_at: ageHours(clock, 1) } });
      const first = await redeem(t, code, unique('cus_a'), fresh());
      expect(decisionOf(first).action).toBe('allow');
      clock.advance(60_000);
      // Every one of the burst is held and reaches back to the first: one of them holds it.
      const burst = await Promise.all(
        Array.from({ length: 8 }, () =>
          t.call('POST', '/v1/redemptions', {
            key: t.keys.checkout,
            body: checkoutBody(code, { customer: { id: unique('cus_burst') }, ...fresh() }),
            headers: { 'idempotency-key': unique('IDEM-') },
          }),
        ),
      );
      expect(burst.map((r) => r.statusCode)).toEqual(Array(8).fill(201));
      for (const r of [first, ...burst]) expect(await reviewStatus(r.json().id)).toBe('pending');
      const events = await t.app.db
        .selectFrom('outbox')
        .select(['aggregate_id', (eb) => eb.fn.countAll<number>().as('n')])
        .where('type', '=', 'redemption.held')
        .where(
          'aggregate_id',
          'in',
          [first, ...burst].map((r) => r.json().id),
        )
        .groupBy('aggregate_id')
        .execute();
      expect(events.map((e) => [e.aggregate_id, Number(e.n)])).toEqual([[first.json().id, 1]]);
    });

    it("holds a flood's earlier fresh accounts of the last hour on the campaign, not older ones", async () => {
      clock.set(NOW.toISOString());
      const { code } = await campaignWithCode(t, {});
      const fresh = () => ({ context: { account_created_at: ageHours(clock, 0.2) } });
      const early = await redeem(t, code, unique('cus_early'), fresh());
      clock.advance(2 * HOUR);
      const wave = [];
      for (let i = 0; i < 5; i++) {
        wave.push(await redeem(t, code, unique('cus_wave'), fresh()));
        clock.advance(60_000);
      }
      expect(wave.map((r) => decisionOf(r).action)).toEqual(['allow', 'allow', 'allow', 'allow', 'allow']);
      const [cancelled, ...kept] = wave;
      const rolled = await t.call('POST', `/v1/redemptions/${cancelled?.json().id}/rollback`, {
        key: t.keys.checkout,
      });
      expect(rolled.statusCode, rolled.body).toBe(200);
      const tripped = await redeem(t, code, unique('cus_wave'), fresh());
      expect(decisionOf(tripped).because).toContain('rule_default_new_account_flood');
      for (const r of kept) expect(await reviewStatus(r.json().id)).toBe('pending');
      expect(await reviewStatus(cancelled?.json().id)).toBeNull();
      expect(await reviewStatus(early.json().id)).toBeNull();
      const held = await heldEvents(kept[0]?.json().id);
      expect(held).toHaveLength(1);
    });

    it('refuses hold_with on a rule that does not hold', async () => {
      const base = {
        name: 'fresh accounts on a code',
        expression: 'features.code_new_accounts_24h >= 3',
        reason: 'ring',
        mode: 'shadow',
      };
      const block = await t.call('POST', '/v1/rules', {
        body: { ...base, action: 'block', hold_with: 'code_new_accounts_24h' },
      });
      expect(block.statusCode, block.body).toBe(400);
      expect(block.json()).toMatchObject({ code: 'validation_failed' });
      expect(block.json().errors[0].field).toBe('body/hold_with');

      const review = await t.call('POST', '/v1/rules', {
        body: { ...base, action: 'review', hold_with: 'code_new_accounts_24h' },
      });
      expect(review.statusCode, review.body).toBe(201);
      expect(review.json().hold_with).toBe('code_new_accounts_24h');
      const toBlock = await t.call('PATCH', `/v1/rules/${review.json().id}`, { body: { action: 'block' } });
      expect(toBlock.statusCode, toBlock.body).toBe(400);
      const both = await t.call('PATCH', `/v1/rules/${review.json().id}`, {
        body: { action: 'block', hold_with: null },
      });
      expect(both.statusCode, both.body).toBe(200);
      expect(both.json()).toMatchObject({ action: 'block', hold_with: null });
      const unknown = await t.call('PATCH', `/v1/rules/${review.json().id}`, {
        body: { hold_with: 'everyone' },
      });
      expect(unknown.statusCode).toBe(400);

      const shipped = await t.call('GET', '/v1/rules/rule_default_referral_ring');
      expect(shipped.json().hold_with).toBe('code_new_accounts_24h');
    });
  },
);
