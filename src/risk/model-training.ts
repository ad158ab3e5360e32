/**
 * Fits the learned score: logistic regression (ml-logistic-regression's gradient ascent) over the
 * standardized numeric features plus an intercept column. Standardizing first keeps one learning
 * rate right for counts in the thousands and ratios near one alike.
 */
import LogisticRegressionTwoClasses from 'ml-logistic-regression/src/logreg_2classes.js';
import { Matrix } from 'ml-matrix';
import type { FeatureValues } from '../domain/risk.js';
import { SCORE_MODEL_FORMAT, type ScoreModel } from '../domain/score-model.js';

export interface TrainingRow {
  features: FeatureValues;
  /** 1 = abuse. */
  label: 0 | 1;
}

export interface TrainingOptions {
  /** Gradient steps over the whole set. */
  steps?: number;
  /** Step size per row: the library sums the gradient over the rows, so it is divided by their count. */
  learningRate?: number;
}

/**
 * The features worth a weight: those present in at least one row and not constant (a constant
 * column carries nothing the intercept does not).
 */
export function usableFeatures(rows: readonly TrainingRow[], candidates: readonly string[]): string[] {
  return candidates.filter((name) => {
    let first: number | undefined;
    for (const r of rows) {
      const v = r.features[name];
      if (v === undefined) continue;
      if (first === undefined) first = v;
      else if (v !== first) return true;
    }
    return false;
  });
}

export function trainLogistic(
  rows: readonly TrainingRow[],
  features: readonly string[],
  options: TrainingOptions = {},
): ScoreModel {
  const n = rows.length;
  const means = features.map((f) => {
    let sum = 0;
    let count = 0;
    for (const r of rows) {
      const v = r.features[f];
      if (v !== undefined) {
        sum += v;
        count++;
      }
    }
    return count > 0 ? sum / count : 0;
  });
  const scales = features.map((f, i) => {
    let sum = 0;
    let count = 0;
    for (const r of rows) {
      const v = r.features[f];
      if (v !== undefined) {
        sum += (v - (means[i] as number)) ** 2;
        count++;
      }
    }
    const sd = count > 1 ? Math.sqrt(sum / (count - 1)) : 0;
    return sd > 0 ? sd : 1;
  });
  // An absent feature is taken at the mean: 0 once standardized. The last column is the intercept.
  const x = new Matrix(
    rows.map((r) => [
      ...features.map((f, i) => {
        const v = r.features[f];
        return v === undefined ? 0 : (v - (means[i] as number)) / (scales[i] as number);
      }),
      1,
    ]),
  );
  const y = Matrix.columnVector(rows.map((r) => r.label));
  const trainer = new LogisticRegressionTwoClasses({
    numSteps: options.steps ?? 500,
    learningRate: (options.learningRate ?? 1) / Math.max(1, n),
  });
  trainer.train(x, y);
  const w = trainer.weights?.to1DArray() ?? [];
  return {
    format: SCORE_MODEL_FORMAT,
    kind: 'logistic_regression',
    features: [...features],
    means,
    scales,
    weights: w.slice(0, features.length),
    intercept: w[features.length] ?? 0,
  };
}
