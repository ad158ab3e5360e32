/**
 * The learned score: the pure model (format guard, scoring, contributions, evaluation, holdout), the
 * trainer, and its whole life through the HTTP app on every backend — train on labeled decisions into
 * shadow (scored, recorded, read by no rule), promote (audited; rules now read `features.model_score`),
 * explain a decision, export and import a file, and refuse a model of another format with a clear error.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  evaluate,
  explain,
  isHoldout,
  parseScoreModel,
  SCORE_MODEL_FORMAT,
  type ScoreModel,
  ScoreModelFormatError,
  score,
} from '../../src/domain/score-model.js';
import { trainLogistic, usableFeatures } from '../../src/risk/model-training.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { createRule, type decisionOf, expectBlocked, expectRedeemed, fraudKey, redeem } from './helpers.js';

const model: ScoreModel = {
  format: SCORE_MODEL_FORMAT,
  kind: 'logistic_regression',
  features: ['account_age_hours', 'linked_accounts'],
  means: [100, 1],
  scales: [50, 1],
  weights: [-2, 1.5],
  intercept: -1,
};

describe('the score model', () => {
  it('reads its own format and refuses another with a message naming both', () => {
    expect(parseScoreModel(JSON.parse(JSON.stringify(model)))).toEqual(model);
    expect(() => parseScoreModel({ ...model, format: 2 })).toThrow(ScoreModelFormatError);
    expect(() => parseScoreModel({ ...model, format: 2 })).toThrow(
      /model format 2 is not supported: this version of Promoguard reads format 1/,
    );
    expect(() => parseScoreModel({ ...model, features: ['no_such_feature', 'linked_accounts'] })).toThrow(
      /does not compute: no_such_feature/,
    );
    expect(() => parseScoreModel({ ...model, weights: [1] })).toThrow(/one per feature/);
    expect(() => parseScoreModel({ ...model, scales: [0, 1] })).toThrow(/positive/);
    expect(() => parseScoreModel(null)).toThrow(/JSON object/);
  });

  it('scores as the logistic of the intercept plus the contributions, an absent feature adding nothing', () => {
    const features = { account_age_hours: 0, linked_accounts: 3 };
    const e = explain(model, features);
    const logit = e.intercept + e.contributions.reduce((s, c) => s + c.contribution, 0);
    expect(e.score).toBeCloseTo(1 / (1 + Math.exp(-logit)), 12);
    expect(e.score).toBe(score(model, features));
    // (0 - 100) / 50 * -2 = 4 and (3 - 1) * 1.5 = 3: the larger effect first.
    expect(e.contributions.map((c) => [c.feature, c.contribution])).toEqual([
      ['account_age_hours', 4],
      ['linked_accounts', 3],
    ]);
    const partial = explain(model, { linked_accounts: 1 });
    expect(partial.contributions.find((c) => c.feature === 'account_age_hours')).toEqual({
      feature: 'account_age_hours',
      value: null,
      contribution: 0,
    });
    expect(partial.score).toBeCloseTo(1 / (1 + Math.exp(1)), 12);
  });

  it('counts the confusion matrix, precision, recall and calibration bins', () => {
    const e = evaluate([0.9, 0.8, 0.3, 0.6, 0.1, 0.05], [1, 1, 1, 0, 0, 0]);
    expect([e.truePositives, e.falsePositives, e.falseNegatives, e.trueNegatives]).toEqual([2, 1, 1, 2]);
    expect(e.precision).toBeCloseTo(2 / 3);
    expect(e.recall).toBeCloseTo(2 / 3);
    expect(e.calibration).toHaveLength(10);
    expect(e.calibration.reduce((s, b) => s + b.count, 0)).toBe(6);
    expect(e.calibration[9]).toMatchObject({ count: 1, predicted: 0.9, observed: 1 });
    expect(evaluate([], []).precision).toBeNull();
  });

  it('holds out the same fifth of decisions every time', () => {
    const ids = Array.from({ length: 5_000 }, (_, i) => `dec_${i.toString(36).padStart(8, '0')}`);
    const held = ids.filter(isHoldout);
    expect(held.length / ids.length).toBeGreaterThan(0.17);
    expect(held.length / ids.length).toBeLessThan(0.23);
    expect(ids.filter(isHoldout)).toEqual(held);
  });

  it('learns which way a feature points, and drops the constant ones', () => {
    const rows = Array.from({ length: 400 }, (_, i) => {
      const abuse = i % 2 === 0;
      // Abuse comes from young accounts; the noise keeps the classes overlapping a little.
      const age = abuse ? (i % 37) * 2 : 30 + (i % 53) * 20;
      return {
        features: { account_age_hours: age, customer_redemptions: 1 },
        label: (abuse ? 1 : 0) as 0 | 1,
      };
    });
    const features = usableFeatures(rows, ['account_age_hours', 'customer_redemptions', 'linked_accounts']);
    expect(features).toEqual(['account_age_hours']);
    const fitted = trainLogistic(rows, features);
    expect(fitted.weights[0]).toBeLessThan(0);
    const e = evaluate(
      rows.map((r) => score(fitted, r.features)),
      rows.map((r) => r.label),
    );
    expect(e.recall).toBeGreaterThan(0.85);
    expect(e.precision).toBeGreaterThan(0.85);
  });
});

const NOW = '2026-06-01T12:00:00Z';

describe.each(backends.map((b) => [b.name, b] as const))('the learned score on %s', (_name, backend) => {
  const clock = new TestClock(new Date(NOW));
  let t: TestApp;
  let fraud: string;
  let campaignId: string;
  let code: string;

  const hoursAgo = (h: number) => new Date(clock.now().getTime() - h * 3_600_000).toISOString();
  /** New accounts are the abuse in this labeled history; old ones are honest. */
  const attempt = (ageHours: number) =>
    redeem(t, code, unique('cus_'), { context: { account_created_at: hoursAgo(ageHours) } });

  beforeAll(async () => {
    t = await startTestApp(backend, { clock, env: { RISK_DEFAULT_PACK: 'off' } });
    fraud = await fraudKey(t);
    ({ campaignId, code } = await campaignWithCode(t));
    for (let i = 0; i < 70; i++) {
      const abuse = i % 2 === 0;
      const r = expectRedeemed(await attempt(abuse ? 1 + (i % 5) : 2_000 + i * 30));
      const labeled = await t.call('POST', `/v1/decisions/${r.decision.id}/label`, {
        key: fraud,
        body: { label: abuse ? 'abuse' : 'legitimate' },
      });
      expect(labeled.statusCode, labeled.body).toBe(200);
    }
  }, 120_000);
  afterAll(async () => t?.close());

  const period = () => ({ from: hoursAgo(24), to: hoursAgo(-1) });

  it('refuses to train without enough labels of both kinds', async () => {
    const r = await t.call('POST', '/v1/models/train', {
      key: fraud,
      body: { from: hoursAgo(2_000), to: hoursAgo(1_000) },
    });
    expect(r.statusCode, r.body).toBe(422);
    expect(r.json().code).toBe('not_enough_labels');
    expect(r.json().detail).toMatch(/0 abuse and 0 legitimate/);
  });

  it('needs the fraud scope', async () => {
    const r = await t.call('POST', '/v1/models/train', { key: t.keys.checkout, body: period() });
    expect(r.statusCode).toBe(403);
  });

  it('trains a shadow model that is scored and recorded but read by no rule, then enforces it once promoted', async () => {
    const trained = await t.call('POST', '/v1/models/train', { key: fraud, body: period() });
    expect(trained.statusCode, trained.body).toBe(201);
    const report = trained.json();
    expect(report.model).toMatchObject({ status: 'shadow', format: 1 });
    expect(report.training.rows + report.holdout.count).toBe(70);
    expect(report.holdout.recall).toBeGreaterThan(0.8);
    expect(report.holdout.precision).toBeGreaterThan(0.8);
    const version = report.model.version as number;
    const age = (report.model.features as { name: string; weight: number }[]).find(
      (f) => f.name === 'account_age_hours',
    );
    expect(age?.weight).toBeLessThan(0);

    const ruleId = await createRule(t, fraud, {
      expression: 'has(features.model_score) && features.model_score > 0.5',
      action: 'block',
      campaign_id: campaignId,
    });

    // Shadow: recorded on the decision, no feature, no rule fires.
    const shadowed = expectRedeemed(await attempt(1)).decision as ReturnType<typeof decisionOf> & {
      model?: { shadow?: { version: number; score: number }; enforcing?: unknown };
    };
    expect(shadowed.model?.shadow?.version).toBe(version);
    expect(shadowed.model?.shadow?.score).toBeGreaterThan(0.5);
    expect(shadowed.model?.enforcing).toBeUndefined();
    expect(shadowed.features.model_score).toBeUndefined();

    const promoted = await t.call('POST', `/v1/models/${version}/promote`, {
      key: fraud,
      body: { reason: 'holdout precision and recall above 80 %' },
    });
    expect(promoted.statusCode, promoted.body).toBe(200);
    expect(promoted.json()).toMatchObject({ status: 'enforcing', promoted_at: new Date(NOW).toISOString() });
    const again = await t.call('POST', `/v1/models/${version}/promote`, {
      key: fraud,
      body: { reason: 'again' },
    });
    expect(again.json().code).toBe('model_already_enforcing');

    const blocked = expectBlocked(await attempt(2));
    expect(blocked.because).toEqual([ruleId]);
    expect(blocked.features.model_score).toBeGreaterThan(0.5);
    const honest = expectRedeemed(await attempt(5_000)).decision;
    expect(honest.features.model_score).toBeLessThan(0.5);

    const explained = await t.call('GET', `/v1/decisions/${blocked.id}/score`, { key: fraud });
    expect(explained.statusCode, explained.body).toBe(200);
    const enforcing = (
      explained.json().models as { status: string; score: number; contributions: { feature: string }[] }[]
    ).find((m) => m.status === 'enforcing');
    expect(enforcing?.score).toBeCloseTo(blocked.features.model_score as number, 10);
    // The account's age, or the new accounts in its person (this one included), leads the score.
    expect(['account_age_hours', 'linked_new_accounts']).toContain(enforcing?.contributions[0]?.feature);

    const audit = await sql<{ action: string; reason: string | null }>`
      SELECT action, reason FROM audit_log WHERE target_id = ${String(version)} ORDER BY id`.execute(
      t.app.db,
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['model.trained', 'model.promoted']);
    expect(audit.rows[1]?.reason).toBe('holdout precision and recall above 80 %');

    const retired = await t.call('POST', `/v1/models/${version}/retire`, {
      key: fraud,
      body: { reason: 'done' },
    });
    expect(retired.json().status).toBe('retired');
    expect(expectRedeemed(await attempt(1)).decision.features.model_score).toBeUndefined();
  });

  it('exports a model file, imports it as a new shadow model, and refuses a file of another format', async () => {
    const list = await t.call('GET', '/v1/models', { key: fraud });
    const version = (list.json().data as { version: number }[]).at(-1)?.version as number;
    const file = await t.call('GET', `/v1/models/${version}/file`, { key: fraud });
    expect(file.statusCode, file.body).toBe(200);
    const imported = await t.call('POST', '/v1/models/import', { key: fraud, body: file.json() });
    expect(imported.statusCode, imported.body).toBe(201);
    expect(imported.json()).toMatchObject({ status: 'shadow', format: 1 });
    expect(imported.json().version).toBeGreaterThan(version);

    const exported = file.json() as { model: Record<string, unknown> };
    const foreign = { ...exported, model: { ...exported.model, format: 7 } };
    const refused = await t.call('POST', '/v1/models/import', { key: fraud, body: foreign });
    expect(refused.statusCode, refused.body).toBe(422);
    expect(refused.json()).toMatchObject({ code: 'model_format_unsupported' });
    expect(refused.json().detail).toMatch(
      /model format 7 is not supported: this version of Promoguard reads format 1/,
    );
    const layout = await t.call('POST', '/v1/models/import', {
      key: fraud,
      body: { ...exported, promoguard_model_file: 2 },
    });
    expect(layout.json().code).toBe('model_format_unsupported');
  });

  it('leaves a stored model of another format out of scoring and refuses to promote it', async () => {
    const v = 1_000;
    await sql`INSERT INTO score_models (version, format, status, model, evaluation, trained_on, created_by, created_at)
      VALUES (${v}, 9, 'retired', '{"format": 9}'::jsonb, '{}'::jsonb, '{}'::jsonb, 'test', now())`.execute(
      t.app.db,
    );
    const r = await t.call('POST', `/v1/models/${v}/promote`, { key: fraud, body: { reason: 'try' } });
    expect(r.statusCode, r.body).toBe(422);
    expect(r.json().detail).toMatch(/model format 9 is not supported/);
    const shown = await t.call('GET', `/v1/models/${v}`, { key: fraud });
    expect(shown.json()).toMatchObject({ format: 9, features: [], intercept: null, evaluation: null });
    expect((await t.call('GET', '/v1/models/99999', { key: fraud })).json().code).toBe('model_not_found');
  });
});
