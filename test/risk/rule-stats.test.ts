/**
 * What the console's Rules page reads, through the real HTTP app on every database backend: each rule's
 * hit rate over a period (enforced and shadow hits over the stored decisions it applies to, wallet
 * reads and redemption attempts alike, since it was created),
 * what a shadow rule would have changed had it been enforced, backtest examples per confusion-matrix
 * cell (bounded), and the position a type error points at. Scopes and bad input answer 4xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES_PER_CELL } from '../../src/services/rules.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { createRule, decisionOf, expectBlocked, expectRedeemed, fraudKey, redeem } from './helpers.js';

const NOW = '2026-06-01T12:00:00Z';

interface RuleHits {
  rule_id: string;
  decisions: number;
  hits: number;
  enforced_hits: number;
  shadow_hits: number;
  unavailable: number;
  errors: number;
  hit_rate: number | null;
  shadow: { decided: string; would_be: string; decisions: number }[];
}

describe.each(backends.map((b) => [b.name, b] as const))('rule statistics on %s', (_name, backend) => {
  const clock = new TestClock(new Date(NOW));
  let t: TestApp;
  let fraud: string;

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    fraud = await fraudKey(t);
  });
  afterAll(async () => t?.close());

  async function stats(query: string, key = fraud) {
    return t.call('GET', `/v1/rules/stats${query}`, { key });
  }

  it('counts each rule’s hits over the decisions in its scope, and what a shadow rule would have changed', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const start = clock.now();
    const blocker = await createRule(t, fraud, {
      expression: 'order.subtotal_minor == 90000',
      action: 'block',
      campaign_id: campaignId,
    });
    const shadow = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 50000',
      action: 'review',
      mode: 'shadow',
      campaign_id: campaignId,
    });
    const shadowBlock = await createRule(t, fraud, {
      expression: 'order.subtotal_minor >= 80000',
      action: 'block',
      mode: 'shadow',
      campaign_id: campaignId,
    });
    for (const subtotal of [10_000, 20_000, 60_000, 70_000, 80_000, 90_000]) {
      clock.advance(1000);
      const r = await redeem(t, code, unique('CUS_ST_'), { subtotal });
      if (subtotal === 90_000) expectBlocked(r);
      else expectRedeemed(r);
    }
    // Created after those six: its rate counts only the decisions after it.
    clock.advance(1000);
    const late = await createRule(t, fraud, {
      expression: 'order.subtotal_minor < 15000',
      action: 'review',
      mode: 'shadow',
      campaign_id: campaignId,
    });
    for (const subtotal of [12_000, 30_000]) {
      clock.advance(1000);
      expectRedeemed(await redeem(t, code, unique('CUS_ST_'), { subtotal }));
    }

    const from = new Date(start.getTime() - 1000).toISOString();
    const to = new Date(clock.now().getTime() + 1000).toISOString();
    const res = await stats(`?from=${from}&to=${to}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json() as { from: string; to: string; decisions: number; data: RuleHits[] };
    expect(body).toMatchObject({ from, to });
    expect(body.decisions).toBeGreaterThanOrEqual(8);
    const of = (id: string) => body.data.find((r) => r.rule_id === id) as RuleHits;

    expect(of(blocker)).toEqual({
      rule_id: blocker,
      decisions: 8,
      hits: 1,
      enforced_hits: 1,
      shadow_hits: 0,
      unavailable: 0,
      errors: 0,
      hit_rate: 1 / 8,
      shadow: [],
    });
    // 60k, 70k, 80k were allowed and would have gone to review; 90k was blocked and stays blocked.
    expect(of(shadow)).toMatchObject({ decisions: 8, hits: 4, enforced_hits: 0, shadow_hits: 4 });
    expect(of(shadow).hit_rate).toBeCloseTo(0.5);
    expect(of(shadow).shadow).toEqual([
      { decided: 'allow', would_be: 'review', decisions: 3 },
      { decided: 'block', would_be: 'block', decisions: 1 },
    ]);
    expect(of(shadowBlock).shadow).toEqual([
      { decided: 'allow', would_be: 'block', decisions: 1 },
      { decided: 'block', would_be: 'block', decisions: 1 },
    ]);
    expect(of(late)).toMatchObject({ decisions: 2, hits: 1, shadow_hits: 1, hit_rate: 0.5 });
    // A shipped rule about every operation counts every redemption attempt; one about conversions
    // counts none of them (it never applies to a redemption).
    expect(of('rule_default_automation_agent')).toMatchObject({ decisions: 8, hits: 0, hit_rate: 0 });
    expect(of('rule_default_ato_balance_drain')).toMatchObject({ decisions: 0, hits: 0, hit_rate: null });

    // A period before the rules had any decision: no hits, no rate where nothing was decided.
    const before = await stats(
      `?from=${new Date(start.getTime() - 7_200_000).toISOString()}&to=${new Date(start.getTime() - 3_600_000).toISOString()}`,
    );
    expect(before.statusCode, before.body).toBe(200);
    const quiet = (before.json().data as RuleHits[]).find((r) => r.rule_id === blocker);
    expect(quiet).toMatchObject({ decisions: 0, hits: 0, hit_rate: null });

    // Promoted to enforce, its next hit counts as enforced.
    const promoted = await t.call('PATCH', `/v1/rules/${shadow}`, { key: fraud, body: { mode: 'enforce' } });
    expect(promoted.statusCode, promoted.body).toBe(200);
    clock.advance(3000);
    const held = await redeem(t, code, unique('CUS_ST_'), { subtotal: 55_000 });
    expect(decisionOf(held).action).toBe('review');
    const after = await stats(`?from=${from}&to=${new Date(clock.now().getTime() + 1000).toISOString()}`);
    expect((after.json().data as RuleHits[]).find((r) => r.rule_id === shadow)).toMatchObject({
      hits: 5,
      enforced_hits: 1,
      shadow_hits: 4,
    });
  });

  it('defaults to the last 24 hours and refuses bad periods, unknown fields and other scopes', async () => {
    const res = await stats('');
    expect(res.statusCode, res.body).toBe(200);
    expect(new Date(res.json().to).getTime() - new Date(res.json().from).getTime()).toBe(86_400_000);

    const bad = [
      '?from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z',
      '?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
      '?from=yesterday',
      '?window=7d',
    ];
    for (const query of bad) {
      const r = await stats(query);
      expect(r.statusCode, `${query} ${r.body}`).toBe(400);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.json().code).toBe('validation_failed');
    }
    expect((await stats('', t.keys.marketing)).statusCode).toBe(403);
    expect((await t.call('GET', '/v1/rules/stats', { key: null })).statusCode).toBe(401);
  });

  it('backtests with up to ten example decisions per confusion-matrix cell', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const start = clock.now();
    /** [subtotal, label]: the backtested rule fires on 50,000 and more. */
    const set: [number, 'abuse' | 'legitimate' | null][] = [
      [60_000, 'abuse'],
      [70_000, 'legitimate'],
      [10_000, 'abuse'],
      [65_000, null],
      ...Array.from(
        { length: EXAMPLES_PER_CELL + 2 },
        () => [20_000, 'legitimate'] as [number, 'legitimate'],
      ),
    ];
    const ids: string[] = [];
    for (const [subtotal, label] of set) {
      clock.advance(1000);
      const r = await redeem(t, code, unique('CUS_BX_'), { subtotal });
      expectRedeemed(r);
      const id = decisionOf(r).id;
      ids.push(id);
      if (label) {
        const l = await t.call('POST', `/v1/decisions/${id}/label`, { key: fraud, body: { label } });
        expect(l.statusCode, l.body).toBe(200);
      }
    }
    const res = await t.call('POST', '/v1/rules/backtest', {
      key: fraud,
      body: {
        expression: 'order.subtotal_minor >= 50000',
        from: new Date(start.getTime()).toISOString(),
        to: new Date(clock.now().getTime() + 1000).toISOString(),
        campaign_id: campaignId,
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      evaluated: set.length,
      true_positives: 1,
      false_positives: 1,
      false_negatives: 1,
      true_negatives: EXAMPLES_PER_CELL + 2,
    });
    const cell = (name: string) => (body.examples[name] as { id: string }[]).map((e) => e.id);
    expect(cell('true_positives')).toEqual([ids[0]]);
    expect(cell('false_positives')).toEqual([ids[1]]);
    expect(cell('false_negatives')).toEqual([ids[2]]);
    expect(cell('true_negatives')).toEqual(ids.slice(4, 4 + EXAMPLES_PER_CELL));
    expect(body.examples.true_positives[0]).toMatchObject({
      campaign_id: campaignId,
      action: 'allow',
      outcome: 'redeemed',
    });
    expect(body.examples.true_positives[0].redemption_id).toMatch(/^red_/);
  });

  it('counts wallet reads for the rules that apply to them, and not for a rule about the order', async () => {
    clock.advance(86_400_000);
    const start = clock.now();
    const { code } = await campaignWithCode(t);
    const everywhere = await createRule(t, fraud, {
      expression: "request.operation == 'wallet_read'",
      action: 'review',
      mode: 'shadow',
    });
    const orders = await createRule(t, fraud, {
      expression: 'order.subtotal_minor > 0',
      action: 'review',
      mode: 'shadow',
    });
    const customer = unique('CUS_WR_');
    for (let i = 0; i < 2; i++) {
      clock.advance(1000);
      const read = await t.call('GET', `/v1/customers/${customer}/coupons`, { key: t.keys.checkout });
      expect(read.statusCode, read.body).toBe(200);
    }
    clock.advance(1000);
    expectRedeemed(await redeem(t, code, customer));
    const res = await stats(
      `?from=${new Date(start.getTime() - 1000).toISOString()}&to=${new Date(clock.now().getTime() + 1000).toISOString()}`,
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().decisions).toBe(3);
    const of = (id: string) => (res.json().data as RuleHits[]).find((r) => r.rule_id === id);
    expect(of(everywhere)).toMatchObject({ decisions: 3, hits: 2, shadow_hits: 2 });
    expect(of(everywhere)?.shadow).toEqual([{ decided: 'allow', would_be: 'review', decisions: 2 }]);
    expect(of(orders)).toMatchObject({ decisions: 1, hits: 1, shadow_hits: 1, hit_rate: 1 });
  });

  it('points a type error at its place in the expression', async () => {
    const check = (expression: string) =>
      t.call('POST', '/v1/rules/check', { key: fraud, body: { expression } });
    const res = await check('order.subtotal_minor > 1 &&\n  features.no_such_feature > 1');
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().code).toBe('rule_invalid');
    const [error] = res.json().errors as { field: string; message: string; position: unknown }[];
    expect(error).toMatchObject({
      field: 'body/expression',
      message: expect.stringContaining('no_such_feature'),
      position: { line: 2, column: 3 },
    });
    const broken = await check('true &&');
    expect(broken.json().errors[0].position).toEqual({ offset: 7, end: 7, line: 1, column: 8 });
    const notBool = await check('1 + 1');
    expect(notBool.statusCode).toBe(400);
    expect(notBool.json().errors[0].position).toBeUndefined();
    expect((await check('true')).json()).toEqual({ features: [] });
    expect(
      (await t.call('POST', '/v1/rules/check', { key: t.keys.marketing, body: { expression: 'true' } }))
        .statusCode,
    ).toBe(403);
  });
});
