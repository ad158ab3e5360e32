/**
 * The scorecard: a pure function from the recorded actors and attempts to one row per scenario and an
 * overall row. No I/O, no clock: the arithmetic is unit-tested on hand-made records.
 *
 * Abuse: an abusive attempt is `stopped` when its outcome stops abuse (OUTCOME_MEANING); money at stake
 * splits exactly into `leaked` (granted unflagged: outcome allowed) and `protected` (everything else,
 * `held` included, since a held redemption waits for a person before the money is spent).
 * Honest: per attempt, `hurt` = an outcome that hurts (OUTCOME_MEANING) or a challenge on the way; per
 * customer, whether they were blocked, challenged, held or limited at least once, and whether they ended
 * up with every discount they came for (`served`) or not (`denied`).
 */
import type { ActorRecord, AttemptRecord, Label, ScenarioInfo } from './model.js';
import { OUTCOME_MEANING, OUTCOMES, type Outcome } from './outcomes.js';

export interface LatencySummary {
  samples: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface AbuseFigures {
  attempts: number;
  stopped: number;
  stoppedRate: number | null;
  /** Abusive attempts by outcome. */
  outcomes: Record<Outcome, number>;
  valueAtStakeMinor: number;
  valueLeakedMinor: number;
  valueProtectedMinor: number;
  /** Part of `protected`: granted but held for review. */
  valueHeldMinor: number;
}

export interface HonestFigures {
  attempts: number;
  hurtAttempts: number;
  hurtAttemptRate: number | null;
  /** Honest attempts by outcome. */
  outcomes: Record<Outcome, number>;
  customers: number;
  customersServed: number;
  customersDenied: number;
  customersHurt: number;
  customersBlocked: number;
  customersChallenged: number;
  customersHeld: number;
  customersLimited: number;
  deniedRate: number | null;
  hurtRate: number | null;
  blockedRate: number | null;
  challengedRate: number | null;
  heldRate: number | null;
  limitedRate: number | null;
  valueGrantedMinor: number;
}

export interface ScenarioRow {
  scenario: string;
  label: Label;
  actors: number;
  attempts: number;
  httpCalls: number;
  /** Every attempt of the scenario by outcome (all labels). */
  outcomes: Record<Outcome, number>;
  challengedAttempts: number;
  entitledAttempts: number;
  abuse: AbuseFigures;
  honest: HonestFigures;
  latency: LatencySummary;
}

export interface Scorecard {
  rows: ScenarioRow[];
  overall: Omit<ScenarioRow, 'scenario' | 'label'>;
}

export const zeroOutcomes = (): Record<Outcome, number> =>
  Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;

const rate = (part: number, whole: number): number | null => (whole === 0 ? null : part / whole);

/** Nearest-rank percentile of unsorted samples; null for none. */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] as number;
}

export function latencySummary(attempts: readonly AttemptRecord[]): LatencySummary {
  const samples = attempts.flatMap((a) => a.latenciesMs);
  return { samples: samples.length, p50Ms: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99) };
}

/** An honest attempt hurt its customer: an outcome that hurts, or a challenge on the way. */
export function honestAttemptHurt(a: AttemptRecord): boolean {
  return a.challenged || OUTCOME_MEANING[a.outcome].honestHurt;
}

export function abuseFigures(attempts: readonly AttemptRecord[]): AbuseFigures {
  const abusive = attempts.filter((a) => a.label === 'abuse');
  const outcomes = zeroOutcomes();
  let stopped = 0;
  let atStake = 0;
  let leaked = 0;
  let held = 0;
  for (const a of abusive) {
    outcomes[a.outcome] += 1;
    if (OUTCOME_MEANING[a.outcome].abuseStopped) stopped += 1;
    atStake += a.valueAtStakeMinor;
    if (a.outcome === 'allowed') leaked += a.valueAtStakeMinor;
    if (a.outcome === 'held') held += a.valueAtStakeMinor;
  }
  return {
    attempts: abusive.length,
    stopped,
    stoppedRate: rate(stopped, abusive.length),
    outcomes,
    valueAtStakeMinor: atStake,
    valueLeakedMinor: leaked,
    valueProtectedMinor: atStake - leaked,
    valueHeldMinor: held,
  };
}

export function honestFigures(
  actors: readonly ActorRecord[],
  attempts: readonly AttemptRecord[],
): HonestFigures {
  const honest = attempts.filter((a) => a.label === 'honest');
  const outcomes = zeroOutcomes();
  let hurtAttempts = 0;
  let granted = 0;
  const byActor = new Map<string, AttemptRecord[]>();
  for (const a of honest) {
    outcomes[a.outcome] += 1;
    if (honestAttemptHurt(a)) hurtAttempts += 1;
    if (a.kind === 'redeem') granted += a.grantedMinor;
    const list = byActor.get(a.actor) ?? [];
    list.push(a);
    byActor.set(a.actor, list);
  }
  const customers = actors.filter((c) => c.label === 'honest');
  let served = 0;
  let hurt = 0;
  let blocked = 0;
  let challenged = 0;
  let heldCount = 0;
  let limited = 0;
  for (const c of customers) {
    const mine = byActor.get(c.id) ?? [];
    const discounts = mine.filter(
      (a) => a.kind === 'redeem' && (a.outcome === 'allowed' || a.outcome === 'held'),
    ).length;
    if (discounts >= c.entitledDiscounts) served += 1;
    if (mine.some(honestAttemptHurt)) hurt += 1;
    if (mine.some((a) => a.outcome === 'blocked_by_rule' || a.outcome === 'refused_by_defense')) blocked += 1;
    if (mine.some((a) => a.challenged)) challenged += 1;
    if (mine.some((a) => a.outcome === 'held')) heldCount += 1;
    if (mine.some((a) => a.outcome === 'rate_limited')) limited += 1;
  }
  const n = customers.length;
  return {
    attempts: honest.length,
    hurtAttempts,
    hurtAttemptRate: rate(hurtAttempts, honest.length),
    outcomes,
    customers: n,
    customersServed: served,
    customersDenied: n - served,
    customersHurt: hurt,
    customersBlocked: blocked,
    customersChallenged: challenged,
    customersHeld: heldCount,
    customersLimited: limited,
    deniedRate: rate(n - served, n),
    hurtRate: rate(hurt, n),
    blockedRate: rate(blocked, n),
    challengedRate: rate(challenged, n),
    heldRate: rate(heldCount, n),
    limitedRate: rate(limited, n),
    valueGrantedMinor: granted,
  };
}

function figures(actors: readonly ActorRecord[], attempts: readonly AttemptRecord[]) {
  const outcomes = zeroOutcomes();
  for (const a of attempts) outcomes[a.outcome] += 1;
  return {
    actors: actors.length,
    attempts: attempts.length,
    httpCalls: attempts.reduce((s, a) => s + a.httpCalls, 0),
    outcomes,
    challengedAttempts: attempts.filter((a) => a.challenged).length,
    entitledAttempts: attempts.filter((a) => a.label === 'entitled').length,
    abuse: abuseFigures(attempts),
    honest: honestFigures(actors, attempts),
    latency: latencySummary(attempts),
  };
}

/** One row per scenario (in the order given) and the overall row over every scenario. */
export function buildScorecard(
  scenarios: readonly Pick<ScenarioInfo, 'name' | 'label'>[],
  actors: readonly ActorRecord[],
  attempts: readonly AttemptRecord[],
): Scorecard {
  const known = new Set(scenarios.map((s) => s.name));
  for (const a of attempts) {
    if (!known.has(a.scenario)) throw new Error(`attempt of unknown scenario ${a.scenario}`);
  }
  const rows = scenarios.map((s) => ({
    scenario: s.name,
    label: s.label,
    ...figures(
      actors.filter((c) => c.scenario === s.name),
      attempts.filter((a) => a.scenario === s.name),
    ),
  }));
  return { rows, overall: figures(actors, attempts) };
}
