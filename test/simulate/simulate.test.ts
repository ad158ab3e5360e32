/**
 * `promoguard simulate` end to end at a tiny scale: every scenario against the real app on PGlite,
 * listening on a loopback port, with the production attempt limits. It checks the scorecard's
 * arithmetic and labels against what the HTTP client recorded — not how well abuse is detected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../src/cli.js';
import { loadConfig } from '../../src/config.js';
import { ScenarioContext, Simulation } from '../../src/simulate/context.js';
import { SimHttpClient } from '../../src/simulate/http-client.js';
import { OUTCOMES } from '../../src/simulate/outcomes.js';
import { formatScorecard } from '../../src/simulate/report.js';
import { runSimulation, type SimulationResult } from '../../src/simulate/runner.js';
import { SCENARIOS } from '../../src/simulate/scenarios.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

const REAL_LIMITS = {
  RATE_LIMIT_PER_MINUTE: '60',
  LOCKOUT_AFTER_FAILURES: '10',
  RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '300',
  LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '30',
  LOCKOUT_BASE_SECONDS: '60',
  LOCKOUT_MAX_SECONDS: '86400',
};

/** The actors every scenario builds for a seed and tag, without any traffic. */
function actorsFor(seed: number, tag: string) {
  const sim = new Simulation(new SimHttpClient('http://127.0.0.1:9', 'unused', 1), {
    seed,
    scale: 0.3,
    durationMs: 60_000,
    tag,
  });
  const planned = SCENARIOS.map((s) => s.prepare(new ScenarioContext(sim, s, s.short)).planned);
  return { actors: sim.actors, planned };
}

describe('simulate: determinism', () => {
  it('builds the same actors for a seed, others for another seed, and only renames them for another tag', () => {
    const one = actorsFor(1, 'aa');
    expect(actorsFor(1, 'aa')).toEqual(one);
    const otherSeed = actorsFor(2, 'aa');
    expect(otherSeed.actors.map((a) => a.id)).not.toEqual(one.actors.map((a) => a.id));
    const otherTag = actorsFor(1, 'bb');
    expect(otherTag.planned).toEqual(one.planned);
    expect(otherTag.actors.map((a) => [a.scenario, a.label, a.entitledDiscounts])).toEqual(
      one.actors.map((a) => [a.scenario, a.label, a.entitledDiscounts]),
    );
    expect(otherTag.actors.map((a) => a.id.replace('_bb_', '_aa_').replace('-bb-', '-aa-'))).toEqual(
      one.actors.map((a) => a.id),
    );
  });

  it('lists every scenario with its label', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      out.push(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      await buildCli(() => loadConfig({ LOG_LEVEL: 'silent' })).parseAsync([
        'node',
        'promoguard',
        'simulate',
        '--list',
      ]);
    } finally {
      process.stdout.write = write;
    }
    const lines = out.join('').trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(0, 2))).toEqual(SCENARIOS.map((s) => [s.name, s.label]));
  });
});

describe.each(backends.slice(0, 1))('simulate: a small mix against the embedded app ($name)', (backend) => {
  let t: TestApp;
  let result: SimulationResult;
  const progress: [number, number][] = [];

  beforeAll(async () => {
    t = await startTestApp(backend, { env: REAL_LIMITS });
    const url = await t.server.listen({ port: 0, host: '127.0.0.1' });
    result = await runSimulation({
      url,
      apiKey: t.keys.admin,
      seed: 7,
      scale: 0.1,
      durationSeconds: 4,
      tag: 'test',
      concurrency: 8,
      labelDecisions: true,
      onProgress: (done, planned) => progress.push([done, planned]),
    });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('scores every scenario under its own label, and every attempt under its scenario', () => {
    const labels = new Map(SCENARIOS.map((s) => [s.name, s.label]));
    expect(result.scorecard.rows.map((r) => [r.scenario, r.label])).toEqual(
      SCENARIOS.map((s) => [s.name, s.label]),
    );
    for (const a of result.attempts) {
      const label = labels.get(a.scenario);
      if (a.label === 'entitled') {
        expect(label).toBe('abuse');
        expect(a.burst).not.toBeNull();
      } else {
        expect(a.label).toBe(label);
      }
    }
    for (const a of result.actors) expect(a.label).toBe(labels.get(a.scenario));
    // Exactly one entitled use per race burst.
    const bursts = new Map<string, number>();
    for (const a of result.attempts) {
      if (a.burst) bursts.set(a.burst, (bursts.get(a.burst) ?? 0) + (a.label === 'entitled' ? 1 : 0));
    }
    expect(bursts.size).toBeGreaterThan(0);
    for (const entitled of bursts.values()) expect(entitled).toBe(1);
    // Every scenario did something, and every honest customer is one of its scenario's actors.
    for (const row of result.scorecard.rows) expect(row.attempts).toBeGreaterThan(0);
    const honestIds = new Set(result.actors.filter((a) => a.label === 'honest').map((a) => a.id));
    for (const a of result.attempts.filter((x) => x.label === 'honest'))
      expect(honestIds.has(a.actor)).toBe(true);
  });

  it('counts exactly the attempts and HTTP calls the client made', () => {
    const { rows, overall } = result.scorecard;
    for (const row of rows) {
      const mine = result.attempts.filter((a) => a.scenario === row.scenario);
      expect(row.attempts).toBe(mine.length);
      expect(row.httpCalls).toBe(result.httpCalls[row.scenario] ?? 0);
      expect(row.latency.samples).toBe(row.httpCalls);
      expect(OUTCOMES.reduce((n, o) => n + row.outcomes[o], 0)).toBe(row.attempts);
    }
    const setup = result.httpCalls['setup'] ?? 0;
    const labels = result.httpCalls['labels'] ?? 0;
    // After the run, each redemption granted unflagged is read once more (held afterwards?).
    const rechecks = result.httpCalls['recheck'] ?? 0;
    const total = Object.values(result.httpCalls).reduce((n, c) => n + c, 0);
    expect(overall.httpCalls).toBe(total - setup - labels - rechecks);
    const later = result.attempts.filter((a) => a.heldAfterwards);
    expect(later.every((a) => a.outcome === 'held' && a.kind === 'redeem')).toBe(true);
    expect(result.meta.heldAfterwards).toBe(later.length);
    expect(rechecks).toBe(
      result.attempts.filter((a) => a.heldAfterwards || (a.outcome === 'allowed' && a.redemptionId !== null))
        .length,
    );
    expect(overall.attempts).toBe(result.attempts.length);
    // The progress callback saw every attempt.
    expect(progress.at(-1)?.[0]).toBe(result.attempts.length);
  });

  it('adds up: totals are the sum of the rows, money leaked + protected = money at stake', () => {
    const { rows, overall } = result.scorecard;
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0);
    expect(overall.attempts).toBe(sum((r) => r.attempts));
    expect(overall.httpCalls).toBe(sum((r) => r.httpCalls));
    expect(overall.actors).toBe(sum((r) => r.actors));
    expect(overall.entitledAttempts).toBe(sum((r) => r.entitledAttempts));
    for (const o of OUTCOMES) expect(overall.outcomes[o]).toBe(sum((r) => r.outcomes[o]));
    for (const key of [
      'attempts',
      'stopped',
      'valueAtStakeMinor',
      'valueLeakedMinor',
      'valueHeldMinor',
    ] as const) {
      expect(overall.abuse[key]).toBe(sum((r) => r.abuse[key]));
    }
    for (const key of [
      'attempts',
      'hurtAttempts',
      'customers',
      'customersServed',
      'customersHurt',
      'customersBlocked',
      'customersChallenged',
      'customersHeld',
      'customersLimited',
      'valueGrantedMinor',
    ] as const) {
      expect(overall.honest[key]).toBe(sum((r) => r.honest[key]));
    }
    for (const figures of [...rows.map((r) => r.abuse), overall.abuse]) {
      expect(figures.valueLeakedMinor + figures.valueProtectedMinor).toBe(figures.valueAtStakeMinor);
    }
    const abusive = result.attempts.filter((a) => a.label === 'abuse');
    expect(overall.abuse.attempts).toBe(abusive.length);
    expect(overall.abuse.valueAtStakeMinor).toBe(abusive.reduce((n, a) => n + a.valueAtStakeMinor, 0));
    expect(overall.abuse.valueLeakedMinor).toBe(
      abusive.filter((a) => a.outcome === 'allowed').reduce((n, a) => n + a.valueAtStakeMinor, 0),
    );
    for (const r of rows) {
      expect(r.honest.customersServed + r.honest.customersDenied).toBe(r.honest.customers);
      expect(r.label === 'honest' ? r.abuse.attempts : r.honest.attempts).toBe(0);
    }
    // What was granted is what the server said it granted.
    for (const a of result.attempts) {
      if (a.outcome === 'allowed' || a.outcome === 'held') {
        if (a.kind !== 'validate') expect(a.grantedMinor).toBeGreaterThan(0);
      } else expect(a.grantedMinor).toBe(0);
    }
  });

  it("labels every stored decision with the simulator's truth, which a model can be trained on", async () => {
    const truth = new Map<string, string>();
    for (const a of result.attempts) {
      if (a.kind === 'redeem' && a.decision?.id)
        truth.set(a.decision.id, a.label === 'abuse' ? 'abuse' : 'legitimate');
    }
    expect(result.meta.labeledDecisions).toBe(truth.size);
    const stored = await t.app.db.selectFrom('risk_labels').select(['decision_id', 'label']).execute();
    expect(new Map(stored.map((r) => [r.decision_id, r.label]))).toEqual(truth);
    expect([...truth.values()]).toContain('abuse');
    const report = await t.app.models.train(
      { from: new Date(0), to: new Date(Date.now() + 3_600_000) },
      'test',
    );
    expect(report.model.status).toBe('shadow');
    expect(report.training.rows + report.holdout.count).toBe(truth.size);
  });

  it('speaks the API correctly: no errors, no malformed requests', () => {
    const errors = result.attempts.filter((a) => a.outcome === 'error');
    expect(errors.map((a) => `${a.scenario} ${a.kind} ${a.status} ${a.reason}`)).toEqual([]);
  });

  it('prints a table with every scenario and the overall line', () => {
    const text = formatScorecard(result);
    for (const s of SCENARIOS) expect(text).toContain(s.name);
    expect(text).toMatch(/overall: \d+ attempts/);
  });
});

describe.each(backends.slice(0, 1))('simulate: operator mode ($name)', (backend) => {
  let t: TestApp;
  let result: SimulationResult;
  const POLICY = 'rpol_default_guessing_wave';

  beforeAll(async () => {
    t = await startTestApp(backend, { env: REAL_LIMITS });
    const url = await t.server.listen({ port: 0, host: '127.0.0.1' });
    const patched = await t.call('PATCH', `/v1/remediation-policies/${POLICY}`, {
      key: t.keys.admin,
      body: { mode: 'dry_run' },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    result = await runSimulation({
      url,
      apiKey: t.keys.admin,
      seed: 3,
      scale: 0.3,
      durationSeconds: 4,
      tag: 'op',
      concurrency: 8,
      scenarios: ['race-exploit', 'code-spraying'],
      operator: true,
    });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('enforces a dry-run policy for the run and puts it back afterwards', async () => {
    const policy = result.operator?.policies.find((p) => p.id === POLICY);
    expect(policy).toMatchObject({ mode: 'dry_run', switched: true });
    const after = await t.call('GET', `/v1/remediation-policies/${POLICY}`, { key: t.keys.admin });
    expect(after.json().mode).toBe('dry_run');
  });

  it('reports the alerts raised and the remediations applied during the run, with their times', () => {
    const op = result.operator;
    expect(op).not.toBeNull();
    // A race's refused duplicates (code_used_up) on one campaign are a refusal wave; the guessing
    // policy, enforcing for the run, tightens the campaign's guessing limit.
    const wave = op?.alerts.find((a) => a.kind === 'refusal_wave' && a.scope.type === 'campaign');
    expect(wave).toBeDefined();
    expect(op?.campaignScenarios[wave?.scope.campaignId ?? '']).toBe('race-exploit');
    const applied = op?.remediations.find((r) => r.alertId === wave?.id);
    expect(applied).toMatchObject({ policyId: POLICY, action: 'tighten_guessing', dryRun: false });
    expect(applied?.atMs).toBeGreaterThanOrEqual(wave?.atMs ?? Number.POSITIVE_INFINITY);
    const text = formatScorecard(result);
    expect(text).toMatch(/operator: \d+ remediation policies/);
    expect(text).toContain('tighten_guessing');
  });
});
