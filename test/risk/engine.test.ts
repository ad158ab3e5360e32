/**
 * The risk engine's rules, decisions and reviews through the real HTTP app (Fastify inject), on every
 * database backend, with the default pack seeded and the feature counters in memory: type-checked
 * rules, the fraud scope, a default rule blocking a bot, shadow rules recording without acting,
 * resolution order, allow and block lists, the step-up contract of a challenge, the review queue (a
 * rejection rolls back once and emits its events), campaign-scoped, disabled and expired rules,
 * run-time errors, the engine's statistics, backtests scored on a labeled set, the storefront's
 * uniform answer, and review verdicts racing each other and merchant rollbacks.
 *
 * The counter-driven features (memory and Redis) are in features.test.ts, failing open when the counter
 * store is unreachable in fail-open.test.ts, rule changes reaching other nodes in multi-node.test.ts.
 *
 * Rules are global to an app; every test scopes its own rules to a campaign of its own and uses its own
 * customers, devices and addresses, so tests sharing an app do not see each other.
 */
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DomainEvent, EVENT_TYPES } from '../../src/domain/events.js';
import { FEATURES } from '../../src/domain/risk.js';
import { REFUSAL_MESSAGE } from '../../src/http/routes/redemptions.js';
import { DEFAULT_PACK } from '../../src/risk/default-pack.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import {
  counters,
  createRule,
  type DecisionJson,
  decisionOf,
  eventsOf,
  expectBlocked,
  expectChallenged,
  expectRedeemed,
  fraudKey,
  ledgerOf,
  nextIPv4,
  redeem,
  ruleIn,
  statsOf,
  unknownCode,
  validate,
} from './helpers.js';

const NOW = '2026-06-01T12:00:00Z';
const DISCOUNT = 500;

/** Resolves with the first bus event matching, or rejects after `ms`. */
function nextEvent(t: TestApp, match: (e: DomainEvent) => boolean, ms = 5_000): Promise<DomainEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error('event not delivered in time'));
    }, ms);
    const unsubscribe = t.app.bus.subscribe((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(event);
    });
  });
}

describe.each(backends.map((b) => [b.name, b] as const))('risk rules and reviews on %s', (_name, backend) => {
  const clock = new TestClock(new Date(NOW));
  let t: TestApp;
  let fraud: string;

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    fraud = await fraudKey(t);
  });
  afterAll(async () => t?.close());

  it('seeds the default pack and lists every feature with its window', async () => {
    const rules = await t.call('GET', '/v1/rules', { key: fraud });
    expect(rules.statusCode, rules.body).toBe(200);
    const seeded = (
      rules.json().data as { id: string; pack: string | null; mode: string; action: string }[]
    ).filter((r) => r.pack === 'default');
    expect(seeded.map((r) => r.id).sort()).toEqual(DEFAULT_PACK.map((r) => r.id).sort());
    expect(seeded.find((r) => r.id === 'rule_default_unusual_amount')).toMatchObject({ mode: 'shadow' });
    expect(seeded.find((r) => r.id === 'rule_default_device_farm')).toMatchObject({
      mode: 'enforce',
      action: 'block',
    });

    const features = await t.call('GET', '/v1/rules/features', { key: fraud });
    expect(features.statusCode, features.body).toBe(200);
    const windows = Object.fromEntries(
      (features.json().features as { name: string; window_seconds: number | null }[]).map((f) => [
        f.name,
        f.window_seconds,
      ]),
    );
    expect(windows).toEqual({
      device_campaign_redemptions_24h: 86_400,
      device_customers_24h: 86_400,
      code_payment_instruments_30d: 30 * 86_400,
      campaign_new_accounts_1h: 3_600,
      code_new_accounts_24h: 86_400,
      code_locked_tries_1h: 3_600,
      partner_redemptions_1h: 3_600,
      ip_failed_attempts_1h: 3_600,
      ip_customers_1h: 3_600,
      customer_failed_attempts_1h: 3_600,
      linked_accounts: null,
      linked_new_accounts: null,
      linked_cards: null,
      linked_devices: null,
      linked_addresses: null,
      linked_strong_links: null,
      shared_identifier_customers: null,
      email_disposable: null,
      campaign_planned_per_hour: null,
      partner_cap: null,
      customer_redemptions: null,
      account_age_hours: null,
      order_amount_ratio: null,
      customer_device_new: null,
      customer_prefix_new: null,
      customer_payment_new: null,
      customer_history_actions: null,
      customer_hour_share: null,
      hours_since_last_conversion: null,
      conversion_balance_share: null,
      loyalty_coupon_age_minutes: null,
      model_score: null,
    });
    expect(features.json().variables.features).toMatchObject({ device_customers_24h: 'int' });
  });

  it('refuses a rule that does not type-check with 400 rule_invalid naming the problem', async () => {
    const post = (expression: string) =>
      t.call('POST', '/v1/rules', {
        key: fraud,
        body: { name: 'typo', expression, action: 'block', reason: 'x', mode: 'enforce' },
      });
    const typo = await post('features.device_cutsomers_24h >= 5');
    expect(typo.statusCode, typo.body).toBe(400);
    expect(typo.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(typo.json().code).toBe('rule_invalid');
    expect(typo.json().detail).toContain('device_cutsomers_24h');
    expect(typo.json().errors).toEqual([expect.objectContaining({ field: 'body/expression' })]);

    const notBool = await post('features.device_customers_24h');
    expect(notBool.json()).toMatchObject({ status: 400, code: 'rule_invalid' });
    expect(notBool.json().detail).toContain('bool');
    const mixed = await post("features.linked_accounts == 'four'");
    expect(mixed.json()).toMatchObject({ status: 400, code: 'rule_invalid' });
    expect(mixed.json().detail).toContain('string');
    const unknown = await post('shopper.age < 18');
    expect(unknown.json()).toMatchObject({ status: 400, code: 'rule_invalid' });
    expect(unknown.json().detail).toContain('shopper');

    // Nothing was saved.
    const listed = await t.call('GET', '/v1/rules', { key: fraud });
    expect((listed.json().data as { name: string }[]).filter((r) => r.name === 'typo')).toEqual([]);

    // A good rule's expression cannot be broken by a PATCH: refused, the rule unchanged.
    const { campaignId } = await campaignWithCode(t);
    const id = await createRule(t, fraud, {
      expression: 'features.linked_accounts >= 9',
      action: 'review',
      campaign_id: campaignId,
    });
    const patched = await t.call('PATCH', `/v1/rules/${id}`, {
      key: fraud,
      body: { expression: 'features.linked_acounts >= 9' },
    });
    expect(patched.statusCode, patched.body).toBe(400);
    expect(patched.json().detail).toContain('linked_acounts');
    const read = await t.call('GET', `/v1/rules/${id}`, { key: fraud });
    expect(read.json()).toMatchObject({ expression: 'features.linked_accounts >= 9', version: 1 });

    // The check route answers the features read, or the same 400.
    const checked = await t.call('POST', '/v1/rules/check', {
      key: fraud,
      body: { expression: 'features.linked_accounts >= 4 && features.device_customers_24h > 1' },
    });
    expect(checked.statusCode, checked.body).toBe(200);
    expect(checked.json()).toEqual({ features: ['device_customers_24h', 'linked_accounts'] });
    const badCheck = await t.call('POST', '/v1/rules/check', {
      key: fraud,
      body: { expression: 'features.ip_failed_attempts_24h > 1' },
    });
    expect(badCheck.json()).toMatchObject({ status: 400, code: 'rule_invalid' });
    expect(badCheck.json().detail).toContain('ip_failed_attempts_24h');

    // A rule scoped to a campaign that does not exist is refused.
    const orphan = await t.call('POST', '/v1/rules', {
      key: fraud,
      body: {
        name: 'orphan',
        expression: 'true',
        action: 'block',
        reason: 'x',
        mode: 'enforce',
        campaign_id: 'cmp_00000000000000000000000000',
      },
    });
    expect(orphan.json()).toMatchObject({ status: 404, code: 'campaign_not_found' });
  });

  it('risk routes need the fraud scope', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/v1/rules'],
      ['GET', '/v1/rules/features'],
      ['POST', '/v1/rules', { name: 'x', expression: 'true', action: 'block', reason: 'x', mode: 'shadow' }],
      ['POST', '/v1/rules/check', { expression: 'true' }],
      ['GET', '/v1/reviews'],
      ['GET', '/v1/risk/stats'],
      ['GET', `/v1/decisions?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z`],
    ];
    for (const [method, url, body] of routes) {
      for (const key of [t.keys.checkout, t.keys.marketing]) {
        const r = await t.call(method as 'GET', url, { key, body });
        expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(403);
        expect(r.json().code).toBe('forbidden');
      }
      const anonymous = await t.call(method as 'GET', url, { key: null, body });
      expect(anonymous.statusCode, `${method} ${url}`).toBe(401);
    }
    for (const [method, url] of routes.filter(([m]) => m === 'GET')) {
      const r = await t.call(method as 'GET', url, { key: fraud });
      expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(200);
    }
    // Nothing was created by the refused POST.
    const rules = await t.call('GET', '/v1/rules', { key: fraud });
    expect((rules.json().data as { name: string }[]).some((r) => r.name === 'x')).toBe(false);
  });

  it('a default rule blocks an automation user agent; nothing is redeemed and the decision is kept', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const customer = unique('CUS_BOT_');
    const bot = await redeem(t, code, customer, { context: { user_agent: 'curl/8.4.0' } });
    const decision = expectBlocked(bot);
    expect(decision.because).toEqual(['rule_default_automation_agent']);
    expect(ruleIn(decision, 'rule_default_automation_agent')).toMatchObject({
      mode: 'enforce',
      action: 'block',
      result: 'fired',
      reason: expect.stringContaining('automation'),
    });
    expect(await counters(t, campaignId, customer)).toEqual({
      redemptionsUsed: 0,
      spentMinor: 0,
      codeUses: 0,
      customerUses: 0,
    });
    const stored = await t.call('GET', `/v1/decisions/${decision.id}`, { key: fraud });
    expect(stored.statusCode, stored.body).toBe(200);
    expect(stored.json()).toMatchObject({
      id: decision.id,
      campaign_id: campaignId,
      customer_id: customer,
      redemption_id: null,
      action: 'block',
      outcome: 'blocked',
      label: null,
      inputs: { request: { user_agent: 'curl/8.4.0', channel: 'checkout', operation: 'redemption' } },
    });

    // A validation is refused with the reason (trusted caller), a shopper's browser is served.
    const checked = await validate(t, code, customer, { context: { user_agent: 'python-requests/2.31' } });
    expect(checked.json()).toEqual({ valid: false, reason: 'blocked_by_rule', message: REFUSAL_MESSAGE });
    const shopper = await redeem(t, code, customer, {
      context: { user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15' },
    });
    expectRedeemed(shopper);
  });

  it('a shadow rule records without blocking; promoted to enforce it blocks', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const id = await createRule(t, fraud, {
      name: 'big orders',
      expression: 'order.subtotal_minor >= 40000',
      action: 'block',
      mode: 'shadow',
      reason: 'big order',
      campaign_id: campaignId,
    });
    const r = await redeem(t, code, unique('CUS_SHADOW_'), { subtotal: 45_000 });
    const redeemed = expectRedeemed(r, 'allow');
    expect(redeemed.review_status).toBeNull();
    expect(redeemed.decision.because).toEqual([]);
    expect(ruleIn(redeemed.decision, id)).toEqual({
      id,
      name: 'big orders',
      action: 'block',
      mode: 'shadow',
      reason: 'big order',
      result: 'fired',
      features: {},
    });
    // A rule that did not fire is not listed.
    const small = expectRedeemed(await redeem(t, code, unique('CUS_SHADOW_'), { subtotal: 10_000 }));
    expect(ruleIn(small.decision, id)).toBeUndefined();
    // The stored decision (and GET /v1/redemptions/{id}) shows the shadow hit as well.
    const read = await t.call('GET', `/v1/redemptions/${redeemed.id}`, { key: t.keys.checkout });
    expect(read.statusCode, read.body).toBe(200);
    expect(ruleIn(read.json().decision as DecisionJson, id)).toMatchObject({
      mode: 'shadow',
      result: 'fired',
    });

    const promoted = await t.call('PATCH', `/v1/rules/${id}`, { key: fraud, body: { mode: 'enforce' } });
    expect(promoted.statusCode, promoted.body).toBe(200);
    expect(promoted.json()).toMatchObject({ mode: 'enforce', version: 2 });
    const blocked = expectBlocked(await redeem(t, code, unique('CUS_SHADOW_'), { subtotal: 45_000 }));
    expect(blocked.because).toEqual([id]);
  });

  it('resolves block > challenge > review > allow, listing every rule that fired with the features it saw', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const review = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 20000 && features.linked_accounts >= 1',
      action: 'review',
      campaign_id: campaignId,
    });
    const challenge = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 30000',
      action: 'challenge',
      campaign_id: campaignId,
    });
    const block = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 40000',
      action: 'block',
      campaign_id: campaignId,
    });
    const allow = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 10000',
      action: 'allow',
      campaign_id: campaignId,
    });
    const ids = [review, challenge, block, allow];
    const fired = (d: DecisionJson) =>
      d.rules
        .filter((r) => ids.includes(r.id))
        .map((r) => r.id)
        .sort();

    const a = expectRedeemed(await redeem(t, code, unique('CUS_ORDER_'), { subtotal: 15_000 }), 'allow');
    expect(a.decision.because).toEqual([allow]);
    expect(fired(a.decision)).toEqual([allow].sort());

    const b = expectRedeemed(await redeem(t, code, unique('CUS_ORDER_'), { subtotal: 25_000 }), 'review');
    expect(b.review_status).toBe('pending');
    expect(b.decision.because).toEqual([review]);
    expect(fired(b.decision)).toEqual([review, allow].sort());
    expect(ruleIn(b.decision, review)?.features).toEqual({ linked_accounts: 1 });

    const c = await redeem(t, code, unique('CUS_ORDER_'), { subtotal: 35_000 });
    expectChallenged(c);
    expect(decisionOf(c).because).toEqual([challenge]);
    expect(fired(decisionOf(c))).toEqual([review, challenge, allow].sort());

    const d = expectBlocked(await redeem(t, code, unique('CUS_ORDER_'), { subtotal: 45_000 }));
    expect(d.because).toEqual([block]);
    expect(fired(d)).toEqual([...ids].sort());

    // Two agreeing rules are both named, in id order.
    const second = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 45000',
      action: 'block',
      campaign_id: campaignId,
    });
    const e = expectBlocked(await redeem(t, code, unique('CUS_ORDER_'), { subtotal: 50_000 }));
    expect(e.because).toEqual([block, second].sort());
    // Only the allowed and the reviewed attempt made a redemption.
    expect(await counters(t, campaignId)).toMatchObject({ redemptionsUsed: 2, codeUses: 2 });
  });

  it('an allow-listed customer is let through whatever fired; a block-listed one is refused before the rules', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const block = await createRule(t, fraud, {
      expression: 'true',
      action: 'block',
      campaign_id: campaignId,
    });
    const trusted = unique('CUS_VIP_');
    const listed = await t.call('POST', '/v1/lists', {
      key: fraud,
      body: { list: 'allow', type: 'customer', value: trusted, reason: 'QA account' },
    });
    expect(listed.statusCode, listed.body).toBe(201);
    const r = expectRedeemed(await redeem(t, code, trusted), 'allow');
    expect(r.decision.allow_listed).toBe(true);
    expect(r.decision.because).toEqual([]);
    // The rule is still recorded as having fired.
    expect(ruleIn(r.decision, block)).toMatchObject({ result: 'fired', mode: 'enforce' });
    expectBlocked(await redeem(t, code, unique('CUS_NOT_VIP_')));

    const banned = unique('CUS_BANNED_');
    const ban = await t.call('POST', '/v1/lists', {
      key: fraud,
      body: { list: 'block', type: 'customer', value: banned, reason: 'chargebacks' },
    });
    expect(ban.statusCode, ban.body).toBe(201);
    const refused = await redeem(t, code, banned);
    expect(refused.statusCode, refused.body).toBe(422);
    expect(refused.json().reason).toBe('blocked');
    expect(refused.json().decision).toBeUndefined();
  });

  it('a challenged redemption succeeds after the step-up proof, and only with a valid proof', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const other = unique('PUB');
    const added = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code: other } });
    expect(added.statusCode, added.body).toBe(201);
    const rule = await createRule(t, fraud, {
      expression: "request.operation == 'redemption'",
      action: 'challenge',
      reason: 'verify the shopper',
      campaign_id: campaignId,
    });
    const customer = unique('CUS_STEP_');
    const idem = unique('IDEM-STEP-');
    const orderId = unique('ORD-STEP-');

    const first = await redeem(t, code, customer, { idempotencyKey: idem, orderId });
    const challenge = expectChallenged(first);
    expect(challenge.token).toMatch(/^pgx_/);
    // Ten minutes (whole seconds: at most a second less).
    const ttl = Date.parse(challenge.expires_at) - clock.now().getTime();
    expect(ttl).toBeGreaterThan(10 * 60_000 - 1_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000);
    expect(decisionOf(first)).toMatchObject({ because: [rule], challenge_satisfied: false, step_up: null });
    // Nothing was redeemed; the decision is kept as challenged.
    expect(await counters(t, campaignId, customer)).toMatchObject({ redemptionsUsed: 0, customerUses: 0 });
    const stored = await t.call('GET', `/v1/decisions/${decisionOf(first).id}`, { key: fraud });
    expect(stored.json()).toMatchObject({ outcome: 'challenged', action: 'challenge', redemption_id: null });

    // Another customer's proof, or a proof for another code, or a forged one, is no proof.
    const stranger = unique('CUS_STEP_');
    const strangerToken = expectChallenged(await redeem(t, code, stranger)).token;
    expectChallenged(
      await redeem(t, code, customer, { stepUp: { challenge: strangerToken, method: 'otp' } }),
    );
    const otherCodeToken = expectChallenged(await redeem(t, other, customer)).token;
    expectChallenged(
      await redeem(t, code, customer, { stepUp: { challenge: otherCodeToken, method: 'otp' } }),
    );
    const forged = `${challenge.token.slice(0, -1)}${challenge.token.endsWith('A') ? 'B' : 'A'}`;
    expectChallenged(await redeem(t, code, customer, { stepUp: { challenge: forged, method: 'otp' } }));

    // The same request retried with the proof goes through.
    const retried = await redeem(t, code, customer, {
      idempotencyKey: idem,
      orderId,
      stepUp: { challenge: challenge.token, method: 'otp' },
    });
    const redeemed = expectRedeemed(retried, 'allow');
    expect(redeemed.decision).toMatchObject({ challenge_satisfied: true, step_up: 'otp', because: [] });
    expect(ruleIn(redeemed.decision, rule)).toMatchObject({ result: 'fired' });
    expect(await counters(t, campaignId, customer)).toMatchObject({ redemptionsUsed: 1, customerUses: 1 });
    // A repeat of the retry is the same redemption.
    const replay = await redeem(t, code, customer, {
      idempotencyKey: idem,
      orderId,
      stepUp: { challenge: challenge.token, method: 'otp' },
    });
    expect(replay.statusCode).toBe(201);
    expect(replay.json().id).toBe(redeemed.id);
    expect(replay.headers['idempotent-replayed']).toBe('true');

    // A proof is valid until its expires_at, not at it.
    const late = unique('CUS_STEP_');
    const lateChallenge = expectChallenged(await redeem(t, code, late));
    const lateProof = { challenge: lateChallenge.token, method: 'otp' as const };
    clock.set(new Date(Date.parse(lateChallenge.expires_at) - 1).toISOString());
    expectRedeemed(await redeem(t, code, late, { stepUp: lateProof }));
    clock.set(lateChallenge.expires_at);
    expectChallenged(await redeem(t, code, late, { stepUp: lateProof }));
  });

  it('a step-up proof never lifts a block', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    await createRule(t, fraud, { expression: 'true', action: 'challenge', campaign_id: campaignId });
    const block = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 60000',
      action: 'block',
      campaign_id: campaignId,
    });
    const customer = unique('CUS_STEPBLOCK_');
    const token = expectChallenged(await redeem(t, code, customer, { subtotal: 10_000 })).token;
    const refused = await redeem(t, code, customer, {
      subtotal: 70_000,
      stepUp: { challenge: token, method: '3ds' },
    });
    const decision = expectBlocked(refused);
    expect(decision).toMatchObject({ because: [block], challenge_satisfied: true, step_up: '3ds' });
    // Under the block threshold the same proof lets the order through.
    expectRedeemed(
      await redeem(t, code, customer, { subtotal: 20_000, stepUp: { challenge: token, method: '3ds' } }),
    );
  });

  it('a rejected review rolls the redemption back once and emits review.rejected and redemption.rolled_back', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const rule = await createRule(t, fraud, {
      expression: "request.operation == 'redemption'",
      action: 'review',
      reason: 'new campaign: look at every order',
      campaign_id: campaignId,
    });
    const email = `${unique('shared').toLowerCase()}@example.com`;
    const first = unique('CUS_REVIEW_');
    const second = unique('CUS_REVIEW_');
    const pendingBefore = (await statsOf(t, fraud)).pending_reviews;

    const r1 = expectRedeemed(await redeem(t, code, first, { context: { email } }), 'review');
    clock.advance(1);
    const r2 = expectRedeemed(await redeem(t, code, second, { context: { email } }), 'review');
    expect(r1.review_status).toBe('pending');
    expect(r1.decision.because).toEqual([rule]);
    expect(await counters(t, campaignId)).toMatchObject({
      redemptionsUsed: 2,
      spentMinor: 2 * DISCOUNT,
      codeUses: 2,
    });

    // The queue: oldest first, with the decision and the accounts linked by the shared email.
    const queue = await t.call('GET', `/v1/reviews?campaign_id=${campaignId}`, { key: fraud });
    expect(queue.statusCode, queue.body).toBe(200);
    const items = queue.json().data as {
      redemption: { id: string; review_status: string };
      decision: DecisionJson | null;
      linked_accounts: { customers: string[]; shared_identifiers: { type: string; customers: string[] }[] };
    }[];
    expect(items.map((i) => i.redemption.id)).toEqual([r1.id, r2.id]);
    expect(items[0]?.decision).toMatchObject({ id: r1.decision.id, action: 'review', because: [rule] });
    expect(items[0]?.linked_accounts.customers.sort()).toEqual([first, second].sort());
    expect(items[0]?.linked_accounts.shared_identifiers).toEqual([
      expect.objectContaining({ type: 'email', customers: [first, second].sort() }),
    ]);
    expect(queue.json().pending).toBe(pendingBefore + 2);

    const delivered = nextEvent(t, (e) => e.type === ('review.rejected' as never) && e.aggregateId === r1.id);
    const rejected = await t.call('POST', `/v1/reviews/${r1.id}/reject`, {
      key: fraud,
      body: { note: 'ring of new accounts' },
    });
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect(rejected.json()).toMatchObject({
      id: r1.id,
      status: 'rolled_back',
      review_status: 'rejected',
      rollback_reason: expect.stringContaining('review rejected'),
    });

    // Counters restored once: r2 still holds its use.
    expect(await counters(t, campaignId, first)).toEqual({
      redemptionsUsed: 1,
      spentMinor: DISCOUNT,
      codeUses: 1,
      customerUses: 0,
    });
    expect(await ledgerOf(t, r1.id)).toEqual(
      [
        `redemption:promo_expense:${DISCOUNT}`,
        `redemption:campaign_budget:${-DISCOUNT}`,
        `reversal:promo_expense:${-DISCOUNT}`,
        `reversal:campaign_budget:${DISCOUNT}`,
      ].sort(),
    );
    expect(await eventsOf(t, r1.id)).toEqual([
      'redemption.created',
      'redemption.rolled_back',
      'review.rejected',
    ]);
    const event = await delivered;
    expect(event.payload).toMatchObject({
      label: 'abuse',
      note: 'ring of new accounts',
      redemption: { id: r1.id, status: 'rolled_back', review_status: 'rejected' },
    });
    // The rejection labelled the decision (ground truth for backtests).
    const decision = await t.call('GET', `/v1/decisions/${r1.decision.id}`, { key: fraud });
    expect(decision.json()).toMatchObject({ label: 'abuse', redemption_id: r1.id, outcome: 'redeemed' });

    // Repeating the verdict changes nothing; the other verdict is a conflict.
    const again = await t.call('POST', `/v1/reviews/${r1.id}/reject`, { key: fraud, body: {} });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.body).toBe(rejected.body);
    const flip = await t.call('POST', `/v1/reviews/${r1.id}/approve`, { key: fraud, body: {} });
    expect(flip.json()).toMatchObject({ status: 409, code: 'review_already_decided' });
    expect(await counters(t, campaignId, first)).toMatchObject({ redemptionsUsed: 1, codeUses: 1 });
    expect(await ledgerOf(t, r1.id)).toHaveLength(4);
    expect(await eventsOf(t, r1.id)).toHaveLength(3);

    // The redemption reads back with its decision; the queue holds r2 only.
    const read = await t.call('GET', `/v1/redemptions/${r1.id}`, { key: t.keys.checkout });
    expect(read.json()).toMatchObject({
      status: 'rolled_back',
      review_status: 'rejected',
      decision: { id: r1.decision.id },
    });
    const after = await t.call('GET', `/v1/reviews?campaign_id=${campaignId}`, { key: fraud });
    expect((after.json().data as { redemption: { id: string } }[]).map((i) => i.redemption.id)).toEqual([
      r2.id,
    ]);
    expect(after.json().pending).toBe(pendingBefore + 1);
  });

  it('an approved review keeps the redemption, labels it legitimate and emits review.approved', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    await createRule(t, fraud, { expression: 'true', action: 'review', campaign_id: campaignId });
    const customer = unique('CUS_APPROVE_');
    const r = expectRedeemed(await redeem(t, code, customer), 'review');
    const approved = await t.call('POST', `/v1/reviews/${r.id}/approve`, { key: fraud, body: {} });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({
      status: 'redeemed',
      review_status: 'approved',
      rolled_back_at: null,
    });
    expect(await counters(t, campaignId, customer)).toMatchObject({ redemptionsUsed: 1, customerUses: 1 });
    expect(await eventsOf(t, r.id)).toEqual(['redemption.created', 'review.approved']);
    expect(await ledgerOf(t, r.id)).toHaveLength(2);
    const decision = await t.call('GET', `/v1/decisions/${r.decision.id}`, { key: fraud });
    expect(decision.json().label).toBe('legitimate');
    const flip = await t.call('POST', `/v1/reviews/${r.id}/reject`, { key: fraud, body: { label: 'abuse' } });
    expect(flip.json()).toMatchObject({ status: 409, code: 'review_already_decided' });
    expect(await counters(t, campaignId, customer)).toMatchObject({ redemptionsUsed: 1, customerUses: 1 });

    // A redemption that was never held is not reviewable; an unknown one is not found.
    const plain = await campaignWithCode(t);
    const held = expectRedeemed(await redeem(t, plain.code, unique('CUS_PLAIN_')));
    const notHeld = await t.call('POST', `/v1/reviews/${held.id}/reject`, { key: fraud, body: {} });
    expect(notHeld.json()).toMatchObject({ status: 409, code: 'not_under_review' });
    expect(await counters(t, plain.campaignId)).toMatchObject({ redemptionsUsed: 1 });
    const missing = await t.call('POST', '/v1/reviews/red_00000000000000000000000000/approve', {
      key: fraud,
      body: {},
    });
    expect(missing.json()).toMatchObject({ status: 404, code: 'redemption_not_found' });
  });

  it('rejecting a review the merchant already rolled back restores the counters only once', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    await createRule(t, fraud, { expression: 'true', action: 'review', campaign_id: campaignId });
    const customer = unique('CUS_CANCEL_');
    const r = expectRedeemed(await redeem(t, code, customer), 'review');
    const cancelled = await t.call('POST', `/v1/redemptions/${r.id}/rollback`, {
      key: t.keys.checkout,
      body: { reason: 'order cancelled' },
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    const rejected = await t.call('POST', `/v1/reviews/${r.id}/reject`, { key: fraud, body: {} });
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect(rejected.json()).toMatchObject({
      status: 'rolled_back',
      review_status: 'rejected',
      rollback_reason: 'order cancelled',
    });
    expect(await counters(t, campaignId, customer)).toEqual({
      redemptionsUsed: 0,
      spentMinor: 0,
      codeUses: 0,
      customerUses: 0,
    });
    expect((await ledgerOf(t, r.id)).filter((e) => e.startsWith('reversal'))).toHaveLength(2);
    expect(await eventsOf(t, r.id)).toEqual([
      'redemption.created',
      'redemption.rolled_back',
      'review.rejected',
    ]);
  });

  it('a campaign-scoped rule applies to its campaign only; a disabled rule not at all; an expired one no more', async () => {
    const a = await campaignWithCode(t);
    const b = await campaignWithCode(t);
    const scoped = await createRule(t, fraud, {
      expression: 'true',
      action: 'block',
      campaign_id: a.campaignId,
    });
    expectBlocked(await redeem(t, a.code, unique('CUS_SCOPE_')));
    const elsewhere = expectRedeemed(await redeem(t, b.code, unique('CUS_SCOPE_')));
    expect(ruleIn(elsewhere.decision, scoped)).toBeUndefined();

    const disabled = await createRule(t, fraud, {
      expression: 'true',
      action: 'block',
      campaign_id: b.campaignId,
      enabled: false,
    });
    const off = expectRedeemed(await redeem(t, b.code, unique('CUS_SCOPE_')));
    expect(ruleIn(off.decision, disabled)).toBeUndefined();
    const enabled = await t.call('PATCH', `/v1/rules/${disabled}`, { key: fraud, body: { enabled: true } });
    expect(enabled.statusCode, enabled.body).toBe(200);
    expectBlocked(await redeem(t, b.code, unique('CUS_SCOPE_')));
    const deleted = await t.call('DELETE', `/v1/rules/${disabled}`, { key: fraud });
    expect(deleted.statusCode, deleted.body).toBe(204);
    expect((await t.call('GET', `/v1/rules/${disabled}`, { key: fraud })).json().code).toBe('rule_not_found');
    expectRedeemed(await redeem(t, b.code, unique('CUS_SCOPE_')));

    // Expiry follows the app clock: in force until expires_at, not at it.
    const c = await campaignWithCode(t);
    const expiresAt = new Date(clock.now().getTime() + 60_000);
    const expiring = await createRule(t, fraud, {
      expression: 'true',
      action: 'block',
      campaign_id: c.campaignId,
      expires_at: expiresAt.toISOString(),
    });
    clock.set(new Date(expiresAt.getTime() - 1).toISOString());
    expect(expectBlocked(await redeem(t, c.code, unique('CUS_EXPIRY_'))).because).toEqual([expiring]);
    clock.set(expiresAt.toISOString());
    const expired = expectRedeemed(await redeem(t, c.code, unique('CUS_EXPIRY_')));
    expect(ruleIn(expired.decision, expiring)).toBeUndefined();
  });

  it('a deleted default rule is not re-created by the seed', async () => {
    const deleted = await t.call('DELETE', '/v1/rules/rule_default_unusual_amount', { key: fraud });
    expect(deleted.statusCode, deleted.body).toBe(204);
    expect(await t.app.rules.seedDefaultPack()).toBe(0);
    const read = await t.call('GET', '/v1/rules/rule_default_unusual_amount', { key: fraud });
    expect(read.json()).toMatchObject({ status: 404, code: 'rule_not_found' });
  });

  it('a rule that fails at run time does not fire; it is shown as an error and counted', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const broken = await createRule(t, fraud, {
      expression: 'features.linked_accounts / features.customer_redemptions >= 1',
      action: 'block',
      campaign_id: campaignId,
    });
    const before = await statsOf(t, fraud);
    const r = expectRedeemed(await redeem(t, code, unique('CUS_ERR_')));
    expect(ruleIn(r.decision, broken)).toMatchObject({
      result: 'error',
      detail: expect.stringContaining('division by zero'),
      features: { linked_accounts: 1, customer_redemptions: 0 },
    });
    expect(r.decision.because).toEqual([]);
    expect((await statsOf(t, fraud)).rule_errors).toBe(before.rule_errors + 1);
  });

  it('GET /v1/risk/stats counts the decisions by action', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const rule = (expression: string, action: DecisionJson['action']) =>
      createRule(t, fraud, { expression, action, campaign_id: campaignId });
    await rule('order.subtotal_minor >= 15000', 'review');
    await rule('order.subtotal_minor >= 25000', 'challenge');
    await rule('order.subtotal_minor >= 35000', 'block');
    const before = await statsOf(t, fraud);
    expect(Object.keys(before.decisions).sort()).toEqual(['allow', 'block', 'challenge', 'review']);

    expectRedeemed(await redeem(t, code, unique('CUS_STATS_'), { subtotal: 5_000 }), 'allow');
    expectRedeemed(await redeem(t, code, unique('CUS_STATS_'), { subtotal: 15_000 }), 'review');
    expectRedeemed(await redeem(t, code, unique('CUS_STATS_'), { subtotal: 16_000 }), 'review');
    expectChallenged(await redeem(t, code, unique('CUS_STATS_'), { subtotal: 25_000 }));
    expectBlocked(await redeem(t, code, unique('CUS_STATS_'), { subtotal: 35_000 }));

    const after = await statsOf(t, fraud);
    expect(after.decisions).toEqual({
      allow: before.decisions.allow + 1,
      review: before.decisions.review + 2,
      challenge: before.decisions.challenge + 1,
      block: before.decisions.block + 1,
    });
    expect(after.pending_reviews).toBe(before.pending_reviews + 2);
  });

  it('counts customer_redemptions up to the cap the feature registry states', async () => {
    const registry = FEATURES.find((f) => f.name === 'customer_redemptions');
    const cap = Number(/counted up to ([\d,]+)/.exec(registry?.description ?? '')?.[1]?.replace(/,/g, ''));
    expect(cap, 'the registry states the cap').toBeGreaterThan(0);
    const { code } = await campaignWithCode(t);
    const customer = unique('CUS_LOYAL_');
    const made = 101;
    for (let i = 0; i < made; i++) {
      const r = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: {
          code,
          customer: { id: customer },
          cart: { currency: 'USD', subtotal_minor: 10_000 },
          order_id: `o${i}`,
        },
        headers: { 'idempotency-key': unique('IDEM-LOYAL-') },
      });
      expect(r.statusCode, r.body).toBe(201);
    }
    const checked = await validate(t, code, customer);
    expect(decisionOf(checked).features.customer_redemptions).toBe(Math.min(made, cap));
  });

  it('a storefront gets the uniform answer for a blocked code, with no reason and no decision', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    await createRule(t, fraud, {
      expression: "request.channel == 'storefront'",
      action: 'block',
      campaign_id: campaignId,
    });
    const customer = unique('CUS_STORE_');
    const tokenResponse = await t.call('POST', '/v1/customer-tokens', {
      key: t.keys.checkout,
      body: { customer_id: customer },
    });
    expect(tokenResponse.statusCode, tokenResponse.body).toBe(201);
    const token = tokenResponse.json().token as string;
    const storefront = (text: string) =>
      t.server.inject({
        method: 'POST',
        url: '/v1/validations',
        headers: { authorization: `Bearer ${token}` },
        payload: {
          code: text,
          customer: { id: customer },
          cart: { currency: 'USD', subtotal_minor: 10_000 },
        },
        remoteAddress: nextIPv4(),
      });
    const blocked = await storefront(code);
    const unknown = await storefront(unknownCode());
    expect(blocked.statusCode, blocked.body).toBe(200);
    expect(blocked.json()).toEqual({ valid: false, message: REFUSAL_MESSAGE });
    expect(blocked.body).toBe(unknown.body);

    // The same code through the checkout backend is valid, with the decision for the trusted caller.
    const trusted = await validate(t, code, customer);
    expect(trusted.json()).toMatchObject({ valid: true, decision: { action: 'allow' } });
    // A valid storefront answer carries no decision.
    const open = await campaignWithCode(t);
    const served = await storefront(open.code);
    expect(served.json()).toEqual({
      valid: true,
      discount_minor: DISCOUNT,
      currency: 'USD',
      campaign_id: open.campaignId,
    });
  });

  it('backtests a rule over the stored decisions of a period, scored against the labels', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const blocker = await createRule(t, fraud, {
      expression: 'order.subtotal_minor == 90000',
      action: 'block',
      campaign_id: campaignId,
    });
    const start = clock.now();
    /** [subtotal, label]: the rule under test hits subtotals of 50,000 and more. */
    const set: [number, 'abuse' | 'legitimate' | null][] = [
      [10_000, 'abuse'], // missed abuse
      [20_000, 'legitimate'],
      [60_000, 'abuse'], // hit
      [70_000, 'abuse'], // hit
      [80_000, 'legitimate'], // false alarm
      [65_000, null], // unlabeled hit
      [90_000, 'abuse'], // hit, blocked by the live rule
      [5_000, 'abuse'], // missed abuse
    ];
    const decisions: string[] = [];
    for (const [subtotal, label] of set) {
      clock.advance(1);
      const r = await redeem(t, code, unique('CUS_BT_'), { subtotal });
      if (subtotal === 90_000) expect(expectBlocked(r).because).toEqual([blocker]);
      else expectRedeemed(r);
      const id = decisionOf(r).id;
      decisions.push(id);
      if (label) {
        const labelled = await t.call('POST', `/v1/decisions/${id}/label`, { key: fraud, body: { label } });
        expect(labelled.statusCode, labelled.body).toBe(200);
        expect(labelled.json().label).toBe(label);
      }
    }
    const period = {
      from: new Date(start.getTime() - 60_000).toISOString(),
      to: new Date(start.getTime() + 60_000).toISOString(),
      campaign_id: campaignId,
    };
    const backtest = (expression: string, extra: Record<string, unknown> = {}) =>
      t.call('POST', '/v1/rules/backtest', { key: fraud, body: { expression, ...period, ...extra } });

    const draft = await backtest('order.subtotal_minor >= 50000');
    expect(draft.statusCode, draft.body).toBe(200);
    expect(draft.json()).toEqual({
      from: period.from,
      to: period.to,
      evaluated: 8,
      hits: 5,
      unavailable: 0,
      errors: 0,
      hits_by_outcome: { redeemed: 4, blocked: 1 },
      labeled: { abuse: 5, legitimate: 2 },
      true_positives: 3,
      false_positives: 1,
      false_negatives: 2,
      true_negatives: 1,
      precision: 0.75,
      recall: 0.6,
      sample_hits: [decisions[2], decisions[3], decisions[4], decisions[5], decisions[6]],
      examples: {
        true_positives: [decisions[2], decisions[3], decisions[6]].map((id) =>
          expect.objectContaining({ id }),
        ),
        false_positives: [expect.objectContaining({ id: decisions[4] })],
        false_negatives: [decisions[0], decisions[7]].map((id) => expect.objectContaining({ id })),
        true_negatives: [expect.objectContaining({ id: decisions[1] })],
      },
      truncated: false,
    });

    // The latest label counts: the false alarm was abuse after all.
    await t.call('POST', `/v1/decisions/${decisions[4]}/label`, { key: fraud, body: { label: 'abuse' } });
    // A saved rule backtests over its own campaign by default.
    const saved = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 50000',
      action: 'review',
      mode: 'shadow',
      campaign_id: campaignId,
    });
    const savedRun = await t.call('POST', `/v1/rules/${saved}/backtest`, {
      key: fraud,
      body: { from: period.from, to: period.to },
    });
    expect(savedRun.statusCode, savedRun.body).toBe(200);
    expect(savedRun.json()).toMatchObject({
      evaluated: 8,
      hits: 5,
      labeled: { abuse: 6, legitimate: 1 },
      true_positives: 4,
      false_positives: 0,
      false_negatives: 2,
      precision: 1,
      recall: 4 / 6,
    });

    // A rule that hits nothing has no precision and zero recall; one that fails is counted as errors.
    expect((await backtest('order.subtotal_minor > 1000000')).json()).toMatchObject({
      hits: 0,
      precision: null,
      recall: 0,
      false_negatives: 6,
    });
    expect(
      (await backtest('features.linked_accounts / features.customer_redemptions > 0')).json(),
    ).toMatchObject({ evaluated: 8, hits: 0, errors: 8 });
    // [from, to): a period ending at the first decision's instant holds none of them, one starting at the
    // last decision's instant holds that one.
    const none = await backtest('true', {
      from: new Date(start.getTime() - 60_000).toISOString(),
      to: new Date(start.getTime() + 1).toISOString(),
    });
    const last = await backtest('true', {
      from: new Date(start.getTime() + set.length).toISOString(),
      to: new Date(start.getTime() + 60_000).toISOString(),
    });
    expect(last.json()).toMatchObject({ evaluated: 1, sample_hits: [decisions[set.length - 1]] });
    expect(none.json()).toMatchObject({ evaluated: 0, precision: null, recall: null });
    const bad = await backtest('true', { to: period.from });
    expect(bad.json()).toMatchObject({ status: 400, code: 'validation_failed' });
    const typo = await backtest('order.subtotl_minor > 1');
    expect(typo.json()).toMatchObject({ status: 400, code: 'rule_invalid' });
    expect(typo.json().detail).toContain('subtotl_minor');

    // The decisions are listed for the period, oldest first.
    const listed = await t.call(
      'GET',
      `/v1/decisions?from=${encodeURIComponent(period.from)}&to=${encodeURIComponent(period.to)}&campaign_id=${campaignId}`,
      { key: fraud },
    );
    expect(listed.statusCode, listed.body).toBe(200);
    expect((listed.json().data as { id: string }[]).map((d) => d.id)).toEqual(decisions);
    const blockedOnly = await t.call(
      'GET',
      `/v1/decisions?from=${encodeURIComponent(period.from)}&to=${encodeURIComponent(period.to)}&campaign_id=${campaignId}&action=block`,
      { key: fraud },
    );
    expect(blockedOnly.json().data).toEqual([
      expect.objectContaining({ id: decisions[6], action: 'block', outcome: 'blocked', label: 'abuse' }),
    ]);
    const unknown = await t.call('POST', '/v1/decisions/dec_00000000000000000000000000/label', {
      key: fraud,
      body: { label: 'abuse' },
    });
    expect(unknown.json()).toMatchObject({ status: 404, code: 'decision_not_found' });
  });

  it('stores a decision’s features once, and reads decisions stored with the inputs’ copy alike', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const start = clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      clock.advance(1);
      const r = await redeem(t, code, unique('CUS_ONCE_'));
      expectRedeemed(r);
      ids.push(decisionOf(r).id);
    }
    const stored = async (id: string) => {
      const { rows } = await sql<{
        decision: unknown;
      }>`SELECT decision FROM risk_decisions WHERE id = ${id}`.execute(t.app.db);
      const d = rows[0]?.decision;
      return (typeof d === 'string' ? JSON.parse(d) : d) as {
        features: Record<string, unknown>;
        inputs: Record<string, unknown>;
      };
    };
    const fresh = await stored(ids[0] as string);
    expect(fresh.features.linked_accounts).toBe(1);
    expect(fresh.inputs.features).toBeUndefined();
    expect(fresh.inputs.order).toMatchObject({ currency: 'USD' });
    // The form an earlier version stored: the features in the inputs too.
    await sql`UPDATE risk_decisions SET decision = jsonb_set(decision, '{inputs,features}', decision->'features')
               WHERE id = ${ids[1] as string}`.execute(t.app.db);
    expect((await stored(ids[1] as string)).inputs.features).toEqual(fresh.features);

    for (const id of ids) {
      const shown = await t.call('GET', `/v1/decisions/${id}`, { key: fraud });
      expect(shown.statusCode, shown.body).toBe(200);
      expect(shown.json().inputs.features).toMatchObject({ linked_accounts: 1 });
    }
    const backtest = await t.call('POST', '/v1/rules/backtest', {
      key: fraud,
      body: {
        expression: 'features.linked_accounts == 1 && order.currency == "USD"',
        from: new Date(start.getTime() - 60_000).toISOString(),
        to: new Date(start.getTime() + 60_000).toISOString(),
        campaign_id: campaignId,
      },
    });
    expect(backtest.json()).toMatchObject({ evaluated: 2, hits: 2, unavailable: 0, errors: 0 });
  });

  it('every event the outbox emits is a declared event type (consumers type events by EventType)', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    await createRule(t, fraud, { expression: 'true', action: 'review', campaign_id: campaignId });
    const kept = expectRedeemed(await redeem(t, code, unique('CUS_TYPES_')), 'review');
    const dropped = expectRedeemed(await redeem(t, code, unique('CUS_TYPES_')), 'review');
    expect(
      (await t.call('POST', `/v1/reviews/${kept.id}/approve`, { key: fraud, body: {} })).statusCode,
    ).toBe(200);
    expect(
      (await t.call('POST', `/v1/reviews/${dropped.id}/reject`, { key: fraud, body: {} })).statusCode,
    ).toBe(200);
    const { rows } = await sql<{ type: string }>`SELECT DISTINCT type FROM outbox ORDER BY type`.execute(
      t.app.db,
    );
    const emitted = rows.map((r) => r.type);
    expect(emitted).toEqual(expect.arrayContaining(['review.approved', 'review.rejected']));
    expect(emitted.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type))).toEqual([]);
  });

  /*
   * Reviews decided concurrently (the PostgreSQL run is the one with real concurrency; PGlite
   * serialises): however many verdicts and merchant rollbacks arrive at once for one held redemption,
   * exactly one verdict wins, the redemption is rolled back at most once (counters restored once, one
   * reversing ledger pair, one `redemption.rolled_back`) and exactly one `review.*` event is emitted.
   */
  describe('concurrent review verdicts', () => {
    /** A campaign whose every redemption is held for review, and `count` held redemptions in it. */
    async function held(count: number) {
      const { campaignId, code } = await campaignWithCode(t);
      await createRule(t, fraud, { expression: 'true', action: 'review', campaign_id: campaignId });
      const redemptions: { id: string; customer: string; decision: string }[] = [];
      for (let i = 0; i < count; i++) {
        const customer = unique('CUS_HELD_');
        const r = expectRedeemed(await redeem(t, code, customer), 'review');
        expect(r.review_status).toBe('pending');
        redemptions.push({ id: r.id, customer, decision: r.decision.id });
      }
      return { campaignId, redemptions };
    }

    const verdict = (id: string, v: 'approve' | 'reject') =>
      t.call('POST', `/v1/reviews/${id}/${v}`, { key: fraud, body: {} });

    async function label(decisionId: string): Promise<string | null> {
      const r = await t.call('GET', `/v1/decisions/${decisionId}`, { key: fraud });
      expect(r.statusCode, r.body).toBe(200);
      return r.json().label as string | null;
    }

    it('20 concurrent rejections of one held redemption roll it back exactly once', async () => {
      const { campaignId, redemptions } = await held(1);
      const [r] = redemptions as [(typeof redemptions)[number]];
      const before = await counters(t, campaignId, r.customer);
      expect(before).toEqual({ redemptionsUsed: 1, spentMinor: DISCOUNT, codeUses: 1, customerUses: 1 });

      const responses = await Promise.all(Array.from({ length: 20 }, () => verdict(r.id, 'reject')));
      for (const response of responses) {
        expect(response.statusCode, response.body).toBe(200);
        expect(response.json()).toMatchObject({ id: r.id, status: 'rolled_back', review_status: 'rejected' });
      }
      expect(new Set(responses.map((x) => x.body)).size).toBe(1);

      expect(await counters(t, campaignId, r.customer)).toEqual({
        redemptionsUsed: 0,
        spentMinor: 0,
        codeUses: 0,
        customerUses: 0,
      });
      expect(await ledgerOf(t, r.id)).toEqual(
        [
          `redemption:promo_expense:${DISCOUNT}`,
          `redemption:campaign_budget:${-DISCOUNT}`,
          `reversal:promo_expense:${-DISCOUNT}`,
          `reversal:campaign_budget:${DISCOUNT}`,
        ].sort(),
      );
      expect(await eventsOf(t, r.id)).toEqual([
        'redemption.created',
        'redemption.rolled_back',
        'review.rejected',
      ]);
      expect(await label(r.decision)).toBe('abuse');
    });

    it('approvals and rejections racing on held redemptions: one verdict wins each, rolled back only if rejected', async () => {
      const { campaignId, redemptions } = await held(4);
      const calls: { id: string; v: 'approve' | 'reject'; response: Promise<LightMyRequestResponse> }[] = [];
      // Interleaved, and the first verdict to be sent alternates between redemptions.
      for (let i = 0; i < 20; i++) {
        redemptions.forEach((r, k) => {
          const v = (i + k) % 2 === 0 ? 'approve' : 'reject';
          calls.push({ id: r.id, v, response: verdict(r.id, v) });
        });
      }
      const settled = await Promise.all(calls.map(async (c) => ({ ...c, response: await c.response })));

      let approved = 0;
      for (const r of redemptions) {
        const mine = settled.filter((c) => c.id === r.id);
        const winners = mine.filter((c) => c.response.statusCode === 200);
        const losers = mine.filter((c) => c.response.statusCode !== 200);
        // Exactly one verdict won: every call of that verdict answered 200 with the same body, every call
        // of the other verdict a 409.
        const won = new Set(winners.map((c) => c.v));
        expect(won.size, `${r.id}: ${[...won].join(', ')}`).toBe(1);
        const verdictWon = [...won][0] as 'approve' | 'reject';
        expect(winners).toHaveLength(10);
        expect(new Set(winners.map((c) => c.response.body)).size).toBe(1);
        for (const c of losers) {
          expect(c.v).not.toBe(verdictWon);
          expect(c.response.json()).toMatchObject({ status: 409, code: 'review_already_decided' });
        }

        const events = await eventsOf(t, r.id);
        const ledger = await ledgerOf(t, r.id);
        if (verdictWon === 'reject') {
          expect(winners[0]?.response.json()).toMatchObject({
            status: 'rolled_back',
            review_status: 'rejected',
          });
          expect(events).toEqual(['redemption.created', 'redemption.rolled_back', 'review.rejected']);
          expect(ledger.filter((e) => e.startsWith('reversal'))).toHaveLength(2);
          expect(await label(r.decision)).toBe('abuse');
        } else {
          approved += 1;
          expect(winners[0]?.response.json()).toMatchObject({
            status: 'redeemed',
            review_status: 'approved',
          });
          expect(events).toEqual(['redemption.created', 'review.approved']);
          expect(ledger).toHaveLength(2);
          expect(await label(r.decision)).toBe('legitimate');
        }
        expect((await counters(t, campaignId, r.customer)).customerUses).toBe(
          verdictWon === 'approve' ? 1 : 0,
        );
      }
      expect(await counters(t, campaignId)).toMatchObject({
        redemptionsUsed: approved,
        spentMinor: approved * DISCOUNT,
        codeUses: approved,
      });
      const queue = await t.call('GET', `/v1/reviews?campaign_id=${campaignId}`, { key: fraud });
      expect(queue.json().data).toEqual([]);
    });

    it('merchant rollbacks racing rejections restore the counters once', async () => {
      const { campaignId, redemptions } = await held(1);
      const [r] = redemptions as [(typeof redemptions)[number]];
      const rollback = () =>
        t.call('POST', `/v1/redemptions/${r.id}/rollback`, {
          key: t.keys.checkout,
          body: { reason: 'order cancelled' },
        });
      const calls: Promise<LightMyRequestResponse>[] = [];
      for (let i = 0; i < 10; i++) calls.push(verdict(r.id, 'reject'), rollback());
      const responses = await Promise.all(calls);
      for (const response of responses) {
        expect(response.statusCode, response.body).toBe(200);
        expect(response.json()).toMatchObject({ id: r.id, status: 'rolled_back' });
      }

      expect(await counters(t, campaignId, r.customer)).toEqual({
        redemptionsUsed: 0,
        spentMinor: 0,
        codeUses: 0,
        customerUses: 0,
      });
      expect((await ledgerOf(t, r.id)).filter((e) => e.startsWith('reversal'))).toHaveLength(2);
      expect(await eventsOf(t, r.id)).toEqual([
        'redemption.created',
        'redemption.rolled_back',
        'review.rejected',
      ]);
    });
  });
});
