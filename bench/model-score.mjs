#!/usr/bin/env node
/**
 * What the learned score costs a decision: scoring alone (a model over every numeric feature) per
 * decision, and its explanation (every contribution, sorted), p50 / p99 / max in ms. The limit the
 * learned score must keep is 0.2 ms p99 per decision; the run prints it beside the figure.
 *
 *   npm run build && node bench/model-score.mjs [--decisions 200000]
 */
import { performance } from 'node:perf_hooks';
import { explain, MODEL_INPUTS, SCORE_MODEL_FORMAT, score } from '../dist/domain/score-model.js';
import { LatencyRecorder } from './lib/stats.mjs';

const i = process.argv.indexOf('--decisions');
const DECISIONS = i >= 0 ? Number(process.argv[i + 1]) : 200_000;
const LIMIT_P99_MS = 0.2;

const model = {
  format: SCORE_MODEL_FORMAT,
  kind: 'logistic_regression',
  features: [...MODEL_INPUTS],
  means: MODEL_INPUTS.map((_, k) => k + 1),
  scales: MODEL_INPUTS.map((_, k) => 2 + k),
  weights: MODEL_INPUTS.map((_, k) => (k % 2 === 0 ? 0.7 : -0.4)),
  intercept: -2,
};

function features(n) {
  const f = {};
  // Some features absent, as optional ones are on real decisions.
  MODEL_INPUTS.forEach((name, k) => {
    if ((n + k) % 7 !== 0) f[name] = (n * (k + 3)) % 50;
  });
  return f;
}

const scoring = new LatencyRecorder();
const explaining = new LatencyRecorder();
let sink = 0;
for (let n = 0; n < DECISIONS; n++) {
  const f = features(n);
  const t0 = performance.now();
  sink += score(model, f);
  const t1 = performance.now();
  sink += explain(model, f).score;
  explaining.record(performance.now() - t1);
  scoring.record(t1 - t0);
}
const s = scoring.summary();
const e = explaining.summary();
process.stdout.write(
  `model over ${MODEL_INPUTS.length} features, ${DECISIONS.toLocaleString('en')} decisions\n` +
    `score:   p50 ${s.p50} ms  p99 ${s.p99} ms  max ${s.max} ms  (limit p99 ${LIMIT_P99_MS} ms: ${s.p99 <= LIMIT_P99_MS ? 'met' : 'NOT met'})\n` +
    `explain: p50 ${e.p50} ms  p99 ${e.p99} ms  max ${e.max} ms\n`,
);
if (!Number.isFinite(sink)) process.exitCode = 1;
