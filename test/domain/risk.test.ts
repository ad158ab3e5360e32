/**
 * The pure risk decision: how rule outcomes resolve into one action (every precedence pair, shadow
 * rules, fail-open on unavailable features, run-time errors, step-up, allow-list, the order of
 * `because`), the window rule every counter follows, and the derived request features.
 */
import { describe, expect, it } from 'vitest';
import {
  accountAgeHours,
  amountRatio,
  FEATURES,
  inWindow,
  RISK_ACTIONS,
  type RiskAction,
  type RuleMode,
  type RuleOutcome,
  type RuleResult,
  resolveDecision,
} from '../../src/domain/risk.js';

const HOUR = 3_600_000;

let sequence = 0;
/** An outcome of a rule; ids sort in creation order unless given. */
function outcome(
  action: RiskAction,
  result: RuleResult = 'fired',
  overrides: { id?: string; mode?: RuleMode } = {},
): RuleOutcome {
  sequence += 1;
  const id = overrides.id ?? `rule_${String(sequence).padStart(4, '0')}`;
  return {
    rule: { id, name: `${action} rule`, action, mode: overrides.mode ?? 'enforce', reason: `because ${id}` },
    result,
  };
}

function resolve(outcomes: RuleOutcome[], options: { allowListed?: boolean; stepUp?: boolean } = {}) {
  return resolveDecision({
    outcomes,
    allowListed: options.allowListed ?? false,
    stepUp: options.stepUp ?? false,
  });
}

const ids = (outcomes: RuleOutcome[]) => outcomes.map((o) => o.rule.id);

describe('resolveDecision', () => {
  it('allows when no rule fired', () => {
    expect(resolve([])).toEqual({ action: 'allow', because: [], challengeSatisfied: false });
    expect(resolve([outcome('block', 'not_fired'), outcome('challenge', 'not_fired')])).toMatchObject({
      action: 'allow',
      because: [],
    });
  });

  // Every ordered pair of distinct actions: the more severe one wins, in either order of the outcomes.
  const severity: RiskAction[] = ['allow', 'review', 'challenge', 'block'];
  const pairs = severity.flatMap((weaker, i) => severity.slice(i + 1).map((stronger) => [weaker, stronger]));
  it.each(pairs)('%s < %s: the more severe enforced action wins, whatever the order', (weaker, stronger) => {
    const a = outcome(weaker as RiskAction);
    const b = outcome(stronger as RiskAction);
    for (const order of [
      [a, b],
      [b, a],
    ]) {
      const resolution = resolve(order);
      expect(resolution.action).toBe(stronger);
      expect(ids(resolution.because)).toEqual([b.rule.id]);
    }
  });

  it('covers every action in the precedence table', () => {
    expect([...RISK_ACTIONS].sort()).toEqual([...severity].sort());
  });

  it('a fired allow rule is the action only when nothing more severe fired', () => {
    const allow = outcome('allow');
    expect(resolve([allow])).toMatchObject({ action: 'allow', because: [allow] });
  });

  it('shadow rules never act, whatever they would do', () => {
    for (const action of severity) {
      const shadow = outcome(action, 'fired', { mode: 'shadow' });
      expect(resolve([shadow])).toEqual({ action: 'allow', because: [], challengeSatisfied: false });
    }
    const enforcedReview = outcome('review');
    const shadowBlock = outcome('block', 'fired', { mode: 'shadow' });
    expect(resolve([shadowBlock, enforcedReview])).toMatchObject({
      action: 'review',
      because: [enforcedReview],
    });
  });

  it('an enforced rule whose features are unavailable sends the attempt to review (fail open)', () => {
    for (const action of severity) {
      const unavailable = outcome(action, 'unavailable');
      const resolution = resolve([unavailable]);
      expect(resolution.action).toBe('review');
      expect(resolution.because).toEqual([unavailable]);
    }
    // ...but never lowers what an available rule decided.
    const block = outcome('block');
    expect(resolve([outcome('review', 'unavailable'), block])).toMatchObject({
      action: 'block',
      because: [block],
    });
    // An unavailable shadow rule does nothing.
    expect(resolve([outcome('block', 'unavailable', { mode: 'shadow' })]).action).toBe('allow');
  });

  it('a rule that failed at run time does not fire', () => {
    expect(resolve([outcome('block', 'error')])).toEqual({
      action: 'allow',
      because: [],
      challengeSatisfied: false,
    });
    const review = outcome('review');
    expect(resolve([outcome('block', 'error'), review])).toMatchObject({
      action: 'review',
      because: [review],
    });
  });

  it('a step-up satisfies a challenge', () => {
    const challenge = outcome('challenge');
    expect(resolve([challenge], { stepUp: true })).toEqual({
      action: 'allow',
      because: [],
      challengeSatisfied: true,
    });
    // Without the proof the challenge stands.
    expect(resolve([challenge])).toEqual({
      action: 'challenge',
      because: [challenge],
      challengeSatisfied: false,
    });
  });

  it('a step-up never lifts a block, and a challenge satisfied leaves a review standing', () => {
    const block = outcome('block');
    const challenge = outcome('challenge');
    const review = outcome('review');
    expect(resolve([challenge, block], { stepUp: true })).toMatchObject({
      action: 'block',
      because: [block],
      challengeSatisfied: true,
    });
    expect(resolve([block], { stepUp: true })).toMatchObject({ action: 'block', challengeSatisfied: false });
    expect(resolve([challenge, review], { stepUp: true })).toMatchObject({
      action: 'review',
      because: [review],
      challengeSatisfied: true,
    });
  });

  it('a step-up does not satisfy a review that came from an unavailable challenge rule', () => {
    const unavailable = outcome('challenge', 'unavailable');
    expect(resolve([unavailable], { stepUp: true })).toMatchObject({
      action: 'review',
      because: [unavailable],
    });
  });

  it('an allow-listed identifier makes the action allow whatever fired', () => {
    const outcomes = [outcome('block'), outcome('challenge'), outcome('review', 'unavailable')];
    expect(resolve(outcomes, { allowListed: true })).toEqual({
      action: 'allow',
      because: [],
      challengeSatisfied: false,
    });
    expect(resolve(outcomes, { allowListed: true, stepUp: true }).action).toBe('allow');
  });

  it('lists every enforced rule that agrees on the winning action, sorted by rule id', () => {
    const b1 = outcome('block', 'fired', { id: 'rule_b' });
    const b2 = outcome('block', 'fired', { id: 'rule_a' });
    const b3 = outcome('block', 'fired', { id: 'rule_c' });
    const review = outcome('review', 'fired', { id: 'rule_0' });
    const shadow = outcome('block', 'fired', { id: 'rule_00', mode: 'shadow' });
    const expected = ['rule_a', 'rule_b', 'rule_c'];
    const inputs = [b1, review, b2, shadow, b3];
    // Every rotation of the input gives the same answer.
    for (let i = 0; i < inputs.length; i++) {
      const rotated = [...inputs.slice(i), ...inputs.slice(0, i)];
      const resolution = resolve(rotated);
      expect(resolution.action).toBe('block');
      expect(ids(resolution.because)).toEqual(expected);
    }
    // Unavailable rules join fired review rules in `because`, in id order.
    const r1 = outcome('review', 'fired', { id: 'rule_y' });
    const u1 = outcome('block', 'unavailable', { id: 'rule_x' });
    expect(ids(resolve([r1, u1]).because)).toEqual(['rule_x', 'rule_y']);
  });

  it('does not change the outcomes it is given', () => {
    const outcomes = [
      outcome('review', 'fired', { id: 'rule_z' }),
      outcome('review', 'fired', { id: 'rule_a' }),
    ];
    const before = ids(outcomes);
    resolve(outcomes);
    expect(ids(outcomes)).toEqual(before);
  });
});

describe('inWindow: an event at t counts for decisions at times in [t, t + W)', () => {
  const t = Date.parse('2026-06-01T12:00:00Z');
  const W = 24 * HOUR;

  it('counts at t and at t + W - 1', () => {
    expect(inWindow(t, t, W)).toBe(true);
    expect(inWindow(t, t + 1, W)).toBe(true);
    expect(inWindow(t, t + W - 1, W)).toBe(true);
  });

  it('no longer counts at t + W and after', () => {
    expect(inWindow(t, t + W, W)).toBe(false);
    expect(inWindow(t, t + W + 1, W)).toBe(false);
    expect(inWindow(t, t + 10 * W, W)).toBe(false);
  });

  it('a one-millisecond window holds the instant of the event only', () => {
    expect(inWindow(t, t, 1)).toBe(true);
    expect(inWindow(t, t + 1, 1)).toBe(false);
  });

  it('every registered counter feature has a positive window, every other feature none', () => {
    for (const f of FEATURES) {
      if (f.source === 'counter') expect(f.windowMs, f.name).toBeGreaterThan(0);
      else expect(f.windowMs, f.name).toBeNull();
    }
  });
});

describe('accountAgeHours', () => {
  const now = new Date('2026-06-01T12:00:00Z');

  it('is the hours since creation, fractions included', () => {
    expect(accountAgeHours(new Date('2026-06-01T11:30:00Z'), now)).toBe(0.5);
    expect(accountAgeHours(new Date('2026-05-31T12:00:00Z'), now)).toBe(24);
    expect(accountAgeHours(new Date('2026-06-01T12:00:00Z'), now)).toBe(0);
    expect(accountAgeHours(new Date(now.getTime() - 1), now)).toBeCloseTo(1 / HOUR, 15);
  });

  it('is never negative when the account claims to be from the future', () => {
    expect(accountAgeHours(new Date('2026-06-01T13:00:00Z'), now)).toBe(0);
  });
});

describe('amountRatio', () => {
  it("is this order's subtotal over the customer's mean", () => {
    expect(amountRatio(50_000, 10_000)).toBe(5);
    expect(amountRatio(2_500, 10_000)).toBe(0.25);
    expect(amountRatio(0, 10_000)).toBe(0);
  });

  it('is absent without history or with a zero mean', () => {
    expect(amountRatio(10_000, null)).toBeNull();
    expect(amountRatio(10_000, 0)).toBeNull();
    expect(amountRatio(10_000, -5)).toBeNull();
  });
});
