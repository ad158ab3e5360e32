/**
 * The simulator's pure parts: how an HTTP answer is classified, what each outcome counts as, and the
 * scorecard's arithmetic over hand-made records. No server, no I/O.
 */
import { describe, expect, it } from 'vitest';
import type { ActorRecord, AttemptRecord } from '../../src/simulate/model.js';
import { classify, type HttpAnswer, OUTCOME_MEANING, OUTCOMES } from '../../src/simulate/outcomes.js';
import { Rng } from '../../src/simulate/prng.js';
import { money } from '../../src/simulate/report.js';
import { percentOff, typoOf } from '../../src/simulate/scenario.js';
import { buildScorecard, percentile } from '../../src/simulate/scorecard.js';

const answer = (status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  body,
  headers,
  latencyMs: 1,
});

const refused = (reason: string) =>
  answer(422, { code: 'redemption_refused', reason, title: 'This code cannot be used', status: 422 });

describe('classify', () => {
  it('reads a granted redemption, a held one and a replay', () => {
    expect(classify('redeem', answer(201, { discount_minor: 500 }))).toMatchObject({
      outcome: 'allowed',
      grantedMinor: 500,
    });
    const held = classify(
      'redeem',
      answer(201, {
        discount_minor: 700,
        review_status: 'pending',
        decision: { id: 'dec_1', action: 'review', rules: [{ id: 'r1', action: 'review', mode: 'enforce' }] },
      }),
    );
    expect(held).toMatchObject({ outcome: 'held', grantedMinor: 700 });
    expect(held.decision).toEqual({ id: 'dec_1', action: 'review', rules: ['r1:review'] });
    expect(
      classify('redeem', answer(201, { discount_minor: 500 }, { 'idempotent-replayed': 'true' })),
    ).toMatchObject({ outcome: 'replayed', grantedMinor: 0 });
    expect(classify('redeem', answer(201, { discount_minor: 500, review_status: 'approved' })).outcome).toBe(
      'allowed',
    );
  });

  it('sorts refusals into rule, defense and business', () => {
    expect(classify('redeem', refused('blocked_by_rule')).outcome).toBe('blocked_by_rule');
    for (const reason of ['person_cap_reached', 'partner_cap_reached', 'code_used_up', 'blocked']) {
      expect(classify('redeem', refused(reason))).toMatchObject({ outcome: 'refused_by_defense', reason });
    }
    for (const reason of ['code_not_found', 'campaign_expired', 'campaign_not_started', 'not_first_order']) {
      expect(classify('redeem', refused(reason))).toMatchObject({ outcome: 'refused_business', reason });
    }
    expect(classify('validate', answer(200, { valid: false, reason: 'blocked_by_rule' })).outcome).toBe(
      'blocked_by_rule',
    );
    expect(classify('validate', answer(200, { valid: false, reason: 'code_not_found' })).outcome).toBe(
      'refused_business',
    );
    expect(classify('validate', answer(200, { valid: true, discount_minor: 300 }))).toMatchObject({
      outcome: 'allowed',
      grantedMinor: 0,
    });
    expect(classify('convert', answer(422, { code: 'insufficient_points' })).outcome).toBe(
      'refused_by_defense',
    );
    expect(classify('convert', answer(422, { code: 'conversion_not_in_steps' })).outcome).toBe(
      'refused_business',
    );
    expect(classify('convert', answer(201, { amount_minor: 900 }))).toMatchObject({
      outcome: 'allowed',
      grantedMinor: 900,
    });
    expect(classify('credit', answer(201, { movement: { points: 400 } })).grantedMinor).toBe(400);
  });

  it('reads 429 and 428, and calls anything unexpected an error', () => {
    expect(
      classify(
        'redeem',
        answer(429, { code: 'too_many_requests', reason: 'locked' }, { 'retry-after': '60' }),
      ),
    ).toMatchObject({ outcome: 'rate_limited', reason: 'locked', retryAfterSeconds: 60 });
    expect(
      classify(
        'redeem',
        answer(428, { code: 'challenge_required', challenge: { token: 'chl_1', expires_at: 'x' } }),
      ),
    ).toMatchObject({ outcome: 'challenged', challengeToken: 'chl_1' });
    expect(classify('redeem', answer(400, { code: 'validation_failed' }))).toMatchObject({
      outcome: 'error',
      reason: 'validation_failed',
    });
    expect(classify('redeem', answer(0, { error: 'ECONNREFUSED' }))).toMatchObject({ outcome: 'error' });
    expect(classify('redeem', answer(500, { code: 'internal_error' })).outcome).toBe('error');
  });

  it('has a meaning for every outcome, and only the granted one neither stops abuse nor hurts', () => {
    expect(Object.keys(OUTCOME_MEANING).sort()).toEqual([...OUTCOMES].sort());
    expect(OUTCOME_MEANING.allowed).toEqual({ abuseStopped: false, honestHurt: false });
    // A typo's code_not_found is not harm; a wrong guess's is a stop.
    expect(OUTCOME_MEANING.refused_business).toEqual({ abuseStopped: true, honestHurt: false });
    for (const o of [
      'held',
      'challenged',
      'blocked_by_rule',
      'refused_by_defense',
      'rate_limited',
    ] as const) {
      expect(OUTCOME_MEANING[o]).toEqual({ abuseStopped: true, honestHurt: true });
    }
  });
});

let seq = 0;
function attempt(overrides: Partial<AttemptRecord>): AttemptRecord {
  seq += 1;
  return {
    seq,
    scenario: 'abuse-a',
    label: 'abuse',
    actor: 'x',
    kind: 'redeem',
    outcome: 'allowed',
    reason: null,
    status: 201,
    challenged: false,
    valueAtStakeMinor: 0,
    grantedMinor: 0,
    decision: null,
    httpCalls: 1,
    latenciesMs: [10],
    atMs: 0,
    burst: null,
    redemptionId: null,
    heldAfterwards: false,
    ...overrides,
  };
}

const scenarios = [
  { name: 'abuse-a', label: 'abuse' as const },
  { name: 'abuse-b', label: 'abuse' as const },
  { name: 'honest-c', label: 'honest' as const },
];

function fixture() {
  const actors: ActorRecord[] = [
    { scenario: 'abuse-a', id: 'atk1', label: 'abuse', entitledDiscounts: 1 },
    { scenario: 'abuse-b', id: 'atk2', label: 'abuse', entitledDiscounts: 1 },
    { scenario: 'honest-c', id: 'c1', label: 'honest', entitledDiscounts: 1 },
    { scenario: 'honest-c', id: 'c2', label: 'honest', entitledDiscounts: 2 },
    { scenario: 'honest-c', id: 'c3', label: 'honest', entitledDiscounts: 1 },
    { scenario: 'honest-c', id: 'c4', label: 'honest', entitledDiscounts: 1 },
  ];
  const attempts: AttemptRecord[] = [
    // abuse-a: 1000 leaked, 2000 held (protected), 500 refused by a defense, a probe, one entitled use
    attempt({ actor: 'atk1', valueAtStakeMinor: 1000, grantedMinor: 1000, latenciesMs: [10] }),
    attempt({
      actor: 'atk1',
      outcome: 'held',
      valueAtStakeMinor: 2000,
      grantedMinor: 2000,
      latenciesMs: [20],
    }),
    attempt({ actor: 'atk1', outcome: 'refused_by_defense', valueAtStakeMinor: 500, latenciesMs: [30] }),
    attempt({ actor: 'atk1', kind: 'validate', outcome: 'allowed', latenciesMs: [40] }),
    attempt({
      actor: 'atk1',
      label: 'entitled',
      valueAtStakeMinor: 700,
      grantedMinor: 700,
      burst: 'b1',
      latenciesMs: [50],
    }),
    // abuse-b: a challenge not passed, a challenge passed and granted, a 429, an error
    attempt({
      scenario: 'abuse-b',
      actor: 'atk2',
      outcome: 'challenged',
      challenged: true,
      valueAtStakeMinor: 300,
    }),
    attempt({
      scenario: 'abuse-b',
      actor: 'atk2',
      outcome: 'allowed',
      challenged: true,
      valueAtStakeMinor: 300,
      grantedMinor: 300,
      httpCalls: 2,
      latenciesMs: [5, 6],
    }),
    attempt({ scenario: 'abuse-b', actor: 'atk2', outcome: 'rate_limited', valueAtStakeMinor: 300 }),
    attempt({ scenario: 'abuse-b', actor: 'atk2', outcome: 'error', valueAtStakeMinor: 100 }),
    // honest-c
    // c1: a typo (not harm), then served
    attempt({
      scenario: 'honest-c',
      label: 'honest',
      actor: 'c1',
      kind: 'validate',
      outcome: 'refused_business',
    }),
    attempt({
      scenario: 'honest-c',
      label: 'honest',
      actor: 'c1',
      grantedMinor: 500,
      valueAtStakeMinor: 500,
    }),
    // c2: entitled to 2, got 1 (held), was limited once
    attempt({ scenario: 'honest-c', label: 'honest', actor: 'c2', outcome: 'rate_limited' }),
    attempt({
      scenario: 'honest-c',
      label: 'honest',
      actor: 'c2',
      outcome: 'held',
      grantedMinor: 800,
      valueAtStakeMinor: 800,
    }),
    // c3: challenged, passed, served
    attempt({
      scenario: 'honest-c',
      label: 'honest',
      actor: 'c3',
      challenged: true,
      grantedMinor: 200,
      valueAtStakeMinor: 200,
      httpCalls: 2,
      latenciesMs: [100, 200],
    }),
    // c4: blocked by a rule, denied
    attempt({ scenario: 'honest-c', label: 'honest', actor: 'c4', outcome: 'blocked_by_rule' }),
  ];
  return { actors, attempts };
}

describe('buildScorecard', () => {
  it('splits the money at stake exactly into leaked and protected, and leaves entitled uses out', () => {
    const { actors, attempts } = fixture();
    const card = buildScorecard(scenarios, actors, attempts);
    const a = card.rows[0]?.abuse;
    expect(a).toMatchObject({
      attempts: 4,
      stopped: 2,
      valueAtStakeMinor: 3500,
      valueLeakedMinor: 1000,
      valueProtectedMinor: 2500,
      valueHeldMinor: 2000,
    });
    expect(a?.stoppedRate).toBe(0.5);
    expect(card.rows[0]?.entitledAttempts).toBe(1);
    expect(card.rows[0]?.attempts).toBe(5);
    const b = card.rows[1]?.abuse;
    // The passed challenge is not a stop; the error is neither stopped nor leaked, and its stake is protected.
    expect(b).toMatchObject({ attempts: 4, stopped: 2, valueAtStakeMinor: 1000, valueLeakedMinor: 300 });
    expect(b?.valueProtectedMinor).toBe(700);
    expect(card.rows[1]?.challengedAttempts).toBe(2);
    expect(card.rows[1]?.httpCalls).toBe(5);
  });

  it('counts honest harm per attempt and per customer', () => {
    const { actors, attempts } = fixture();
    const h = buildScorecard(scenarios, actors, attempts).rows[2]?.honest;
    expect(h).toMatchObject({
      attempts: 6,
      // limited, held, challenged (passed) and blocked; not the typo, not the plain success
      hurtAttempts: 4,
      customers: 4,
      customersServed: 2, // c1 and c3; c2 got 1 of 2; c4 none
      customersDenied: 2,
      customersHurt: 3,
      customersBlocked: 1,
      customersChallenged: 1,
      customersHeld: 1,
      customersLimited: 1,
      valueGrantedMinor: 1500,
    });
    expect(h?.deniedRate).toBe(0.5);
    expect(h?.hurtRate).toBe(0.75);
    expect(h?.hurtAttemptRate).toBeCloseTo(4 / 6);
  });

  it('makes the overall row the sum of the rows', () => {
    const { actors, attempts } = fixture();
    const { rows, overall } = buildScorecard(scenarios, actors, attempts);
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0);
    expect(overall.attempts).toBe(sum((r) => r.attempts));
    expect(overall.httpCalls).toBe(sum((r) => r.httpCalls));
    expect(overall.actors).toBe(sum((r) => r.actors));
    expect(overall.abuse.valueAtStakeMinor).toBe(sum((r) => r.abuse.valueAtStakeMinor));
    expect(overall.abuse.valueLeakedMinor).toBe(sum((r) => r.abuse.valueLeakedMinor));
    expect(overall.abuse.stopped).toBe(sum((r) => r.abuse.stopped));
    expect(overall.honest.customersHurt).toBe(sum((r) => r.honest.customersHurt));
    for (const o of OUTCOMES) expect(overall.outcomes[o]).toBe(sum((r) => r.outcomes[o]));
    expect(overall.latency.samples).toBe(attempts.reduce((n, a) => n + a.latenciesMs.length, 0));
    expect(overall.latency.p50Ms).toBe(10);
    expect(overall.latency.p99Ms).toBe(200);
  });

  it('refuses attempts of a scenario it was not told about, and scores an empty run as no data', () => {
    expect(() => buildScorecard([], [], [attempt({})])).toThrow(/unknown scenario/);
    const empty = buildScorecard(scenarios, [], []);
    expect(empty.overall.abuse.stoppedRate).toBeNull();
    expect(empty.overall.honest.hurtRate).toBeNull();
    expect(empty.overall.latency).toEqual({ samples: 0, p50Ms: null, p99Ms: null });
  });
});

describe('helpers', () => {
  it('percentile is nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(xs, 0.5)).toBe(50);
    expect(percentile(xs, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
  });

  it('percentages round half to even and respect the cap', () => {
    expect(percentOff(1_005, 1000, null)).toBe(100); // 100.5 -> 100
    expect(percentOff(1_015, 1000, null)).toBe(102); // 101.5 -> 102
    expect(percentOff(50_000, 4000, 4000)).toBe(4000);
  });

  it('money prints dollars and cents', () => {
    expect(money(123_456_789)).toBe('$1,234,567.89');
    expect(money(5)).toBe('$0.05');
  });

  it('the PRNG repeats for a seed, forks independently, and a typo is never the code', () => {
    const a = new Rng('seed');
    const b = new Rng('seed');
    const xs = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xs);
    const fork1 = new Rng('seed').fork('x').u32();
    const parent = new Rng('seed');
    parent.u32();
    expect(parent.fork('x').u32()).toBe(fork1);
    expect(new Rng('other').u32()).not.toBe(xs[0]);
    const rng = new Rng('typos');
    for (let i = 0; i < 500; i++) {
      const typed = typoOf(rng, 'SUMMER-2025-K7QX');
      expect(typed.toUpperCase().replace(/-/g, '')).not.toBe('SUMMER2025K7QX');
    }
  });
});
