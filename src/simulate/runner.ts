/**
 * One simulation run: check the server and the key, read the server's clock, build every selected
 * scenario's actors (deterministically), set up their campaigns, then start all their traffic at once
 * and score what came back.
 */
import { ScenarioContext, Simulation } from './context.js';
import { SimHttpClient } from './http-client.js';
import type { ActorRecord, AttemptRecord, ScenarioInfo } from './model.js';
import { collectOperatorReport, enforcePolicies, type OperatorReport, restorePolicies } from './operator.js';
import { asRecord, OUTCOME_MEANING, type Outcome } from './outcomes.js';
import { selectScenarios } from './scenarios.js';
import { buildScorecard, type Scorecard } from './scorecard.js';

export interface SimulateOptions {
  url: string;
  apiKey: string;
  seed: number;
  scale: number;
  /** Span over which each scenario spreads its traffic (seconds). */
  durationSeconds: number;
  tag: string;
  concurrency: number;
  /** Scenario names; all when empty or absent. */
  scenarios?: readonly string[] | null;
  /** Called as attempts finish, with the planned total (which adaptive actors may pass). */
  onProgress?: (done: number, planned: number) => void;
  /**
   * After the run, label every stored decision with the truth the simulator knows (abuse, or
   * legitimate for honest and entitled attempts): training data for the learned score.
   */
  labelDecisions?: boolean;
  /**
   * Operator mode: every enabled remediation policy in dry_run enforces during the run (switched back
   * after it), and the alerts and remediations of the run are read back into the result.
   */
  operator?: boolean;
}

/** What the operating loop did during an operator-mode run, with the scenario each campaign belongs to. */
export interface OperatorResult extends OperatorReport {
  campaignScenarios: Record<string, string>;
}

export interface SimulationResult {
  meta: {
    url: string;
    seed: number;
    scale: number;
    durationSeconds: number;
    tag: string;
    concurrency: number;
    scenarios: ScenarioInfo[];
    startedAt: string;
    finishedAt: string;
    setupSeconds: number;
    trafficSeconds: number;
    totalSeconds: number;
    serverClockOffsetMs: number;
    /** Decisions labeled with the simulator's truth (`--label-decisions`); null when not asked. */
    labeledDecisions: number | null;
    /** Redemptions granted unflagged and held for review before the run ended (`heldAfterwards`). */
    heldAfterwards: number;
    operator: boolean;
  };
  /** What each outcome counts as (the table the scorecard applies). */
  outcomeMeaning: Record<Outcome, { abuseStopped: boolean; honestHurt: boolean }>;
  scorecard: Scorecard;
  /** Operator mode: the alerts raised and remediations applied during the run; null when off. */
  operator: OperatorResult | null;
  /** HTTP calls the client made, per bucket (each scenario, and `setup`). */
  httpCalls: Record<string, number>;
  actors: ActorRecord[];
  attempts: AttemptRecord[];
}

async function checkServer(http: SimHttpClient): Promise<void> {
  const health = await http.request('GET', '/healthz', { bucket: 'setup' });
  if (health.status === 0) {
    throw new Error(`cannot reach the server: ${JSON.stringify(health.body)}`);
  }
  const auth = await http.request('GET', '/v1/campaigns?limit=1', { bucket: 'setup' });
  if (auth.status === 401 || auth.status === 403) {
    throw new Error(
      `the API key was refused (${auth.status}); the simulator needs an admin key (it creates campaigns, codes, programs and partner caps, and redeems)`,
    );
  }
  if (auth.status !== 200) throw new Error(`GET /v1/campaigns answered ${auth.status}`);
}

/** Server clock minus local clock, from the creation time of a draft campaign (half the round trip). */
async function serverClockOffset(http: SimHttpClient, tag: string): Promise<number> {
  const sent = Date.now();
  const created = await http.expect(201, 'POST', '/v1/campaigns', {
    bucket: 'setup',
    body: {
      name: `promoguard simulate ${tag}: clock probe (draft, never used)`,
      currency: 'USD',
      status: 'draft',
      discount: { type: 'fixed_amount', amount_minor: 1 },
    },
  });
  const received = Date.now();
  const server = new Date(String(created['created_at'])).getTime();
  return Number.isFinite(server) ? Math.round(server - (sent + received) / 2) : 0;
}

export async function runSimulation(options: SimulateOptions): Promise<SimulationResult> {
  const selected = selectScenarios(options.scenarios);
  const started = new Date();
  const http = new SimHttpClient(options.url, options.apiKey, options.concurrency);
  const sim = new Simulation(http, {
    seed: options.seed,
    scale: options.scale,
    durationMs: Math.round(options.durationSeconds * 1000),
    tag: options.tag,
  });
  await checkServer(http);
  sim.serverOffsetMs = await serverClockOffset(http, options.tag);

  const prepared = selected.map((scenario) =>
    scenario.prepare(new ScenarioContext(sim, scenario, scenario.short)),
  );
  const planned = prepared.reduce((n, p) => n + p.planned, 0);
  let done = 0;
  sim.onAttempt = () => {
    done += 1;
    options.onProgress?.(done, Math.max(planned, done));
  };

  const policies = options.operator ? await enforcePolicies(http) : null;
  let operator: OperatorResult | null = null;
  const setupStart = performance.now();
  const setupStartServerMs = Date.now() + sim.serverOffsetMs;
  let trafficStart: number;
  let finished: number;
  try {
    await Promise.all(prepared.map((p) => p.setup()));
    trafficStart = performance.now();
    sim.t0 = trafficStart;
    sim.t0ServerMs = Date.now() + sim.serverOffsetMs;
    options.onProgress?.(0, planned);
    await Promise.all(prepared.map((p) => p.run()));
    finished = performance.now();
    // Adaptive actors make more or fewer attempts than planned: the bar ends full either way.
    options.onProgress?.(done, done);
    if (policies) {
      const report = await collectOperatorReport(http, policies, setupStartServerMs, sim.t0ServerMs);
      operator = { ...report, campaignScenarios: Object.fromEntries(sim.campaignScenario) };
    }
  } finally {
    if (policies) await restorePolicies(http, policies);
  }

  const heldAfterwards = await recheckHolds(http, sim.attempts);
  const labeled = options.labelDecisions ? await labelDecisions(http, sim.attempts) : null;

  const infos: ScenarioInfo[] = selected.map(({ name, label, summary, models }) => ({
    name,
    label,
    summary,
    models,
  }));
  return {
    meta: {
      url: options.url,
      seed: options.seed,
      scale: options.scale,
      durationSeconds: options.durationSeconds,
      tag: options.tag,
      concurrency: options.concurrency,
      scenarios: infos,
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      setupSeconds: round((trafficStart - setupStart) / 1000),
      trafficSeconds: round((finished - trafficStart) / 1000),
      totalSeconds: round((Date.now() - started.getTime()) / 1000),
      serverClockOffsetMs: sim.serverOffsetMs,
      labeledDecisions: labeled,
      heldAfterwards,
      operator: options.operator === true,
    },
    outcomeMeaning: OUTCOME_MEANING,
    scorecard: buildScorecard(infos, sim.actors, sim.attempts),
    operator,
    httpCalls: http.countsByBucket(),
    actors: sim.actors,
    attempts: sim.attempts,
  };
}

/**
 * Read again every redemption that was granted unflagged: one a later redemption's rule held along
 * (`hold_with`) is waiting for review now, and the shop holds its order as it would a held one. Its
 * outcome becomes `held` (stopped for abuse, hurt for an honest customer), marked `heldAfterwards`.
 * Returns how many changed.
 */
async function recheckHolds(http: SimHttpClient, attempts: readonly AttemptRecord[]): Promise<number> {
  const granted = attempts.filter((a) => a.outcome === 'allowed' && a.redemptionId !== null);
  const answers = await Promise.all(
    granted.map((a) => http.request('GET', `/v1/redemptions/${a.redemptionId}`, { bucket: 'recheck' })),
  );
  let changed = 0;
  granted.forEach((a, i) => {
    if (answers[i]?.status !== 200 || asRecord(answers[i]?.body)['review_status'] !== 'pending') return;
    a.outcome = 'held';
    a.heldAfterwards = true;
    changed += 1;
  });
  return changed;
}

/**
 * Label the stored decisions (those of redemptions made, blocked or challenged) through the API, as an
 * analyst would. Validations' decisions are not stored; a decision answered twice (a step-up retry) is
 * labeled once. Returns how many were labeled.
 */
async function labelDecisions(http: SimHttpClient, attempts: readonly AttemptRecord[]): Promise<number> {
  const labels = new Map<string, 'abuse' | 'legitimate'>();
  for (const a of attempts) {
    if (a.kind !== 'redeem' || !a.decision?.id) continue;
    labels.set(a.decision.id, a.label === 'abuse' ? 'abuse' : 'legitimate');
  }
  const answers = await Promise.all(
    [...labels].map(([id, label]) =>
      http.request('POST', `/v1/decisions/${id}/label`, {
        bucket: 'labels',
        body: { label, note: 'simulator ground truth' },
      }),
    ),
  );
  return answers.filter((r) => r.status === 200).length;
}

const round = (x: number) => Math.round(x * 100) / 100;
