/**
 * The learned score: a logistic regression over the decision's numeric features, standardized with
 * the training set's means and spreads. Scoring is a dot product (microseconds), and each feature's
 * contribution to the log-odds is its weight times its standardized value, so a score explains itself.
 * Training lives outside the domain (risk/model-training.ts); evaluation and the holdout split are here
 * so the figures a model is stored with are computed one way.
 */
import { FEATURES, type FeatureValues } from './risk.js';

/** The layout of a stored model; a model of another format is refused, never guessed at. */
export const SCORE_MODEL_FORMAT = 1;

export interface ScoreModel {
  format: typeof SCORE_MODEL_FORMAT;
  kind: 'logistic_regression';
  features: string[];
  /** Per feature: the training mean (also what an absent feature is taken to be) and spread. */
  means: number[];
  scales: number[];
  weights: number[];
  intercept: number;
}

export class ScoreModelFormatError extends Error {}

/** The features a model may read: every numeric feature but the score itself. */
export const MODEL_INPUTS: readonly string[] = FEATURES.filter(
  (f) => (f.type === 'int' || f.type === 'double') && f.name !== 'model_score',
).map((f) => f.name);

const finiteArray = (v: unknown, length: number): v is number[] =>
  Array.isArray(v) && v.length === length && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/** Read a stored or imported model, refusing any other format or a malformed one with the reason. */
export function parseScoreModel(value: unknown): ScoreModel {
  const m = value as Partial<ScoreModel> | null;
  if (typeof m !== 'object' || m === null) throw new ScoreModelFormatError('a model is a JSON object');
  if (m.format !== SCORE_MODEL_FORMAT) {
    throw new ScoreModelFormatError(
      `model format ${String(m.format)} is not supported: this version of Promoguard reads format ${SCORE_MODEL_FORMAT}; train a new model with \`promoguard model train\``,
    );
  }
  if (m.kind !== 'logistic_regression')
    throw new ScoreModelFormatError(`model kind ${String(m.kind)} is not supported`);
  const features = m.features;
  if (!Array.isArray(features) || features.length === 0 || !features.every((f) => typeof f === 'string'))
    throw new ScoreModelFormatError('model features must be a non-empty list of names');
  const unknown = features.filter((f) => !MODEL_INPUTS.includes(f));
  if (unknown.length > 0)
    throw new ScoreModelFormatError(
      `model reads features this version does not compute: ${unknown.join(', ')}`,
    );
  const n = features.length;
  if (!finiteArray(m.means, n) || !finiteArray(m.scales, n) || !finiteArray(m.weights, n))
    throw new ScoreModelFormatError(
      'model means, scales and weights must be finite numbers, one per feature',
    );
  if (m.scales.some((s) => s <= 0)) throw new ScoreModelFormatError('model scales must be positive');
  if (typeof m.intercept !== 'number' || !Number.isFinite(m.intercept))
    throw new ScoreModelFormatError('model intercept must be a finite number');
  return {
    format: SCORE_MODEL_FORMAT,
    kind: 'logistic_regression',
    features: [...features],
    means: [...m.means],
    scales: [...m.scales],
    weights: [...m.weights],
    intercept: m.intercept,
  };
}

export interface Contribution {
  feature: string;
  /** The value seen; null when absent (taken as the training mean, so it contributes nothing). */
  value: number | null;
  /** Its share of the log-odds: weight × standardized value. */
  contribution: number;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** The probability of abuse the model gives these features. */
export function score(model: ScoreModel, features: FeatureValues): number {
  let z = model.intercept;
  for (let i = 0; i < model.features.length; i++) {
    const v = features[model.features[i] as string];
    if (v === undefined) continue;
    z += (model.weights[i] as number) * ((v - (model.means[i] as number)) / (model.scales[i] as number));
  }
  return sigmoid(z);
}

/** The score and every feature's contribution, largest effect first. */
export function explain(
  model: ScoreModel,
  features: FeatureValues,
): { score: number; intercept: number; contributions: Contribution[] } {
  const contributions = model.features.map((feature, i) => {
    const v = features[feature];
    const contribution =
      v === undefined
        ? 0
        : (model.weights[i] as number) * ((v - (model.means[i] as number)) / (model.scales[i] as number));
    return { feature, value: v ?? null, contribution };
  });
  contributions.sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
  return { score: score(model, features), intercept: model.intercept, contributions };
}

/**
 * Which labeled decisions are held out of training to measure the model: one in five, chosen by the
 * decision id (FNV-1a), so a retrain on the same labels holds out the same decisions.
 */
export function isHoldout(decisionId: string): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < decisionId.length; i++) {
    h ^= decisionId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 5 === 0;
}

export interface CalibrationBin {
  /** Scores in [from, to). */
  from: number;
  to: number;
  count: number;
  /** The mean score in the bin, and the share of abuse labels in it. */
  predicted: number | null;
  observed: number | null;
}

export interface Evaluation {
  count: number;
  abuse: number;
  threshold: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  trueNegatives: number;
  /** tp/(tp+fp) and tp/(tp+fn); null when undefined (no positives predicted, no abuse labels). */
  precision: number | null;
  recall: number | null;
  /** Mean squared error of the probability (lower is better calibrated). */
  brier: number | null;
  calibration: CalibrationBin[];
}

/** How scores fare against labels (1 = abuse) at a threshold, with ten calibration bins. */
export function evaluate(scores: readonly number[], labels: readonly (0 | 1)[], threshold = 0.5): Evaluation {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  let squared = 0;
  const bins = Array.from({ length: 10 }, (_, i) => ({
    from: i / 10,
    to: (i + 1) / 10,
    n: 0,
    sum: 0,
    pos: 0,
  }));
  scores.forEach((s, i) => {
    const y = labels[i] as 0 | 1;
    const flagged = s >= threshold;
    if (flagged && y === 1) tp++;
    else if (flagged) fp++;
    else if (y === 1) fn++;
    else tn++;
    squared += (s - y) ** 2;
    const bin = bins[Math.min(9, Math.floor(s * 10))] as (typeof bins)[number];
    bin.n++;
    bin.sum += s;
    bin.pos += y;
  });
  return {
    count: scores.length,
    abuse: tp + fn,
    threshold,
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
    trueNegatives: tn,
    precision: tp + fp > 0 ? tp / (tp + fp) : null,
    recall: tp + fn > 0 ? tp / (tp + fn) : null,
    brier: scores.length > 0 ? squared / scores.length : null,
    calibration: bins.map((b) => ({
      from: b.from,
      to: b.to,
      count: b.n,
      predicted: b.n > 0 ? b.sum / b.n : null,
      observed: b.n > 0 ? b.pos / b.n : null,
    })),
  };
}
