/**
 * A one-sided Poisson CUSUM (Page 1954, in the form Lucas 1985 gave it for counts) over an adaptive
 * baseline: it raises an alarm when the count of events per fixed interval rises well above what the
 * key's own history predicts. Pure: time is passed in as milliseconds, state is plain JSON data.
 *
 * Statistic. For a closed interval with count x and in-control rate λ0 (expected events per
 * interval), the out-of-control rate the detector is tuned for is λ1 = m·λ0 and
 *   k = (λ1 − λ0) / ln(λ1/λ0) = λ0·(m − 1) / ln m,      S ← max(0, S + x − k),      alarm when S > h.
 * ln m·(x − k) is the log-likelihood ratio of Poisson(λ1) against Poisson(λ0), so S is the
 * likelihood-ratio CUSUM in units of events, whatever λ0 is.
 *
 * Threshold. Because S·ln m is a likelihood-ratio CUSUM, its in-control average run length (ARL: mean
 * number of intervals to a false alarm) is at least e^(h·ln m) at every baseline, even one that changes
 * from interval to interval: S > h forces the Shiryaev–Roberts statistic above e^(h·ln m), and that
 * procedure's ARL is at least its threshold (R_n − n is a martingale). So `thresholdForArl(target, m)
 * = ln(target) / ln m` needs no knowledge of the rate. It is conservative when the baseline is known:
 * each event moves S by up to 1, the overshoot is large, and the true ARL is 8× the bound at 0.5–5
 * events per interval and far more at lower and higher rates (`poissonCusumArl` computes it). That
 * margin is what absorbs the error of an estimated baseline, which the bound does not cover.
 *
 * Baseline. λ0 = max(floor, (C + priorEvents) / W), where C and W are the discounted sum of learned
 * counts and the discounted number of learned intervals: an EWMA normalized by its weights, so it starts
 * as the plain mean. History is discounted by 1 − 1/memoryEvents per event and 1 − 1/maxMemoryIntervals
 * per interval, but never faster than 1 − 1/minMemoryIntervals per interval. The memory is thus about
 * `memoryEvents` events: an estimate from a fixed number of events has the same relative error (about
 * 1/√(2·memoryEvents)) at 0.05 and at 50 events per interval, where a fixed number of intervals would
 * hold a couple of events for a sparse key. With one-minute intervals and the defaults, a key at 5 per
 * minute remembers 30 minutes, at 0.5 per minute about three hours, at 0.05 a day.
 * `priorEvents` biases a young key's baseline upward, so a sparse key that showed no event during its
 * warm-up is not judged against a rate of zero; the bias fades as W grows. The floor bounds how
 * sensitive a near-silent key gets and how slowly S drains between its events.
 *
 * An attack must not become the baseline. The CUSUM's own change-point estimate is the interval where S
 * last left 0. While S > 0 the intervals are learned on the side, but λ0 stays the value from before the
 * run: a rise is judged against history it cannot have moved. On an alarm the baseline is rolled back
 * to that pre-run value (the rise is forgotten), and it learns nothing until the episode ends. If S
 * returns to 0 without an alarm, what was learned on the side stands: the run was noise.
 *
 * Episodes. One alarm is reported per episode. After an alarm S restarts from 0; crossing h again
 * inside the episode is not reported again. The episode ends after `clearIntervals` consecutive
 * intervals with S at 0 (the evidence of a raised rate has drained). An episode still open
 * `maxEpisodeIntervals` after its alarm is taken as a new normal: the key starts a new warm-up.
 *
 * Planned peaks. Inside a declared peak the in-control rate is max(baseline, planned count for the
 * interval), and the baseline does not learn, so after a flash sale the baseline is what it was before.
 *
 * Gaps. Intervals with no events count as zeros, so a key that falls silent lowers its baseline. A run
 * of empty intervals is applied in closed form, S's drain included (λ0 is frozen while S > 0, so each
 * empty interval takes the same k off S). Only intervals of an open episode (its drain and its
 * clearIntervals) and a peak's intervals while S > 0 are stepped one at a time.
 */

const MINUTE_MS = 60_000;

/** A declared traffic peak (a flash sale, a newsletter send). Times are Unix epoch milliseconds. */
export interface PlannedPeak {
  startsAt: number;
  endsAt: number;
  /** Events per minute the campaign expects during the peak, for this key. */
  expectedPerMinute: number;
}

export interface PoissonCusumConfig {
  /** Interval length in ms. Interval i is [i·intervalMs, (i + 1)·intervalMs), aligned to the epoch. */
  intervalMs: number;
  /** m > 1: the rise, as a multiple of the baseline, the detector is tuned to catch fastest. */
  shift: number;
  /** h, in events: alarm when S > h. See `thresholdForArl`. */
  threshold: number;
  /**
   * The baseline's memory, in events: each event observed discounts older history by 1 − 1/memoryEvents,
   * so a sparse key remembers many intervals and a busy key few (see the module comment).
   */
  memoryEvents: number;
  /** Shortest memory in intervals, however busy the key (keeps a busy key's baseline steady). */
  minMemoryIntervals: number;
  /** Longest memory in intervals, however quiet the key (a silent key's baseline still falls). */
  maxMemoryIntervals: number;
  /** Lowest baseline, in events per interval. Must be > 0. */
  floor: number;
  /** Events added to the baseline's count while history is short (see the module comment). */
  priorEvents: number;
  /** Intervals a new key only learns before it can alarm. */
  warmupIntervals: number;
  /** Consecutive intervals with S = 0 that end an alarm episode. */
  clearIntervals: number;
  /** Intervals after its alarm at which an episode is taken as the new normal (the key re-learns). */
  maxEpisodeIntervals: number;
  /** Planned peaks a key may hold at once (bounds memory per key). */
  maxPeaks: number;
}

/**
 * ln(target ARL) / ln(shift): an in-control ARL of at least `targetArl` intervals at every known
 * baseline. Choosing the target: a fleet of K keys raises about K / ARL false alarms per interval, so
 * size it from the number of keys and the alarms a reviewer can take (10^5 one-minute intervals is 70
 * days per key; 10^4 codes at 10^6 is 14 false alarms a day at the bound, several times fewer measured,
 * the bound being conservative). A higher target costs detection delay only logarithmically: about
 * ln(target) / KL(λ1‖λ0) intervals (Lorden), 20 % longer for 10^6 than for 10^5.
 */
export function thresholdForArl(targetArl: number, shift: number): number {
  if (!(targetArl > 1) || !Number.isFinite(targetArl)) throw new RangeError('targetArl must be > 1');
  if (!(shift > 1) || !Number.isFinite(shift)) throw new RangeError('shift must be > 1');
  return Math.log(targetArl) / Math.log(shift);
}

/**
 * Defaults for one-minute intervals: tuned for a tripling (m = 3), an ARL bound of 10^5 intervals
 * (70 days per key), a memory of 100 events (between 30 minutes and a week), a floor of 0.6 events per
 * hour, half an hour of warm-up, an episode taken as the new normal after 6 hours.
 */
export const DEFAULT_POISSON_CUSUM: Readonly<PoissonCusumConfig> = Object.freeze({
  intervalMs: MINUTE_MS,
  shift: 3,
  threshold: thresholdForArl(100_000, 3),
  memoryEvents: 100,
  minMemoryIntervals: 30,
  maxMemoryIntervals: 10_000,
  floor: 0.01,
  priorEvents: 3,
  warmupIntervals: 30,
  clearIntervals: 5,
  maxEpisodeIntervals: 360,
  maxPeaks: 16,
});

function requireNumber(name: string, value: number, ok: (v: number) => boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new RangeError(`invalid ${name}: ${value}`);
  }
}

/** The defaults with `overrides` applied, validated (RangeError on a value that cannot work). */
export function poissonCusumConfig(overrides: Partial<PoissonCusumConfig> = {}): PoissonCusumConfig {
  const c: PoissonCusumConfig = { ...DEFAULT_POISSON_CUSUM, ...overrides };
  requireNumber('intervalMs', c.intervalMs, (v) => Number.isInteger(v) && v > 0);
  requireNumber('shift', c.shift, (v) => v > 1);
  requireNumber('threshold', c.threshold, (v) => v > 0);
  requireNumber('memoryEvents', c.memoryEvents, (v) => v >= 1);
  requireNumber('minMemoryIntervals', c.minMemoryIntervals, (v) => v >= 1);
  requireNumber('maxMemoryIntervals', c.maxMemoryIntervals, (v) => v >= c.minMemoryIntervals);
  // A zero floor would let k reach 0: S would never drain and one event per day would eventually alarm.
  requireNumber('floor', c.floor, (v) => v > 0);
  requireNumber('priorEvents', c.priorEvents, (v) => v >= 0);
  requireNumber('warmupIntervals', c.warmupIntervals, (v) => Number.isInteger(v) && v >= 0);
  requireNumber('clearIntervals', c.clearIntervals, (v) => Number.isInteger(v) && v >= 1);
  requireNumber('maxEpisodeIntervals', c.maxEpisodeIntervals, (v) => Number.isInteger(v) && v >= 1);
  requireNumber('maxPeaks', c.maxPeaks, (v) => Number.isInteger(v) && v >= 0);
  return c;
}

/** (m − 1) / ln m: k divided by λ0. */
function kPerBaseline(shift: number): number {
  return (shift - 1) / Math.log(shift);
}

/** Lucas's reference value k = (λ1 − λ0) / ln(λ1/λ0) for λ1 = shift·λ0. */
export function referenceValue(baseline: number, shift: number): number {
  return baseline * kPerBaseline(shift);
}

// ---------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------

/** The stretch since S last left 0: the CUSUM's estimate of when a change began. */
export interface CusumRun {
  /** First interval of the run. */
  start: number;
  /** Events counted over the run. */
  count: number;
  /** Sum of the in-control rates λ0 over the run. */
  expected: number;
  intervals: number;
  /** The baseline's sums and learned-interval count just before the run, restored on an alarm. */
  weighted: number;
  weight: number;
  learned: number;
}

export interface CusumEpisode {
  /** First interval of the run that raised the alarm (the change-point estimate). */
  start: number;
  /** Interval whose close raised the alarm. */
  alarmAt: number;
  /** Consecutive intervals with S = 0 since the last crossing. */
  quiet: number;
}

/** Plain data of finite numbers: `JSON.stringify` and `JSON.parse` round-trip it exactly. */
export interface PoissonCusumState {
  /** Index of the next interval to close. */
  next: number;
  /**
   * The baseline is weighted / weight: the discounted sum of learned counts over the discounted number
   * of learned intervals (an EWMA normalized by its weights, so it is the plain mean at the start).
   */
  weighted: number;
  weight: number;
  /** Intervals learned since the key (re)started; compared with warmupIntervals. */
  learned: number;
  /** The CUSUM statistic S, in events. Never negative. */
  s: number;
  /** Present exactly when s > 0. */
  run: CusumRun | null;
  episode: CusumEpisode | null;
  /** Sorted by startsAt; peaks that ended before interval `next` are dropped as intervals close. */
  peaks: PlannedPeak[];
}

/** A state whose first interval is `interval` (usually the interval of the key's first event). */
export function newPoissonCusumState(interval: number): PoissonCusumState {
  return { next: interval, weighted: 0, weight: 0, learned: 0, s: 0, run: null, episode: null, peaks: [] };
}

export function copyPoissonCusumState(state: PoissonCusumState): PoissonCusumState {
  return {
    next: state.next,
    weighted: state.weighted,
    weight: state.weight,
    learned: state.learned,
    s: state.s,
    run: state.run === null ? null : { ...state.run },
    episode: state.episode === null ? null : { ...state.episode },
    peaks: state.peaks.map((p) => ({ ...p })),
  };
}

/** Replaces the state's planned peaks. RangeError on a malformed peak or more than config.maxPeaks. */
export function setPlannedPeaks(
  config: PoissonCusumConfig,
  state: PoissonCusumState,
  peaks: readonly PlannedPeak[],
): void {
  const live = peaks.filter((p) => p.endsAt > state.next * config.intervalMs);
  for (const p of peaks) {
    requireNumber('peak startsAt', p.startsAt, () => true);
    requireNumber('peak endsAt', p.endsAt, (v) => v > p.startsAt);
    requireNumber('peak expectedPerMinute', p.expectedPerMinute, (v) => v >= 0);
  }
  // Refusing is safer than dropping one: a silently dropped flash sale would page someone.
  if (live.length > config.maxPeaks) throw new RangeError(`more than ${config.maxPeaks} planned peaks`);
  state.peaks = live
    .map((p) => ({ startsAt: p.startsAt, endsAt: p.endsAt, expectedPerMinute: p.expectedPerMinute }))
    .sort((a, b) => a.startsAt - b.startsAt || a.endsAt - b.endsAt);
}

function prunePeaks(config: PoissonCusumConfig, state: PoissonCusumState): void {
  const from = state.next * config.intervalMs;
  if (state.peaks.length > 0 && state.peaks.some((p) => p.endsAt <= from)) {
    state.peaks = state.peaks.filter((p) => p.endsAt > from);
  }
}

function overlapsPeak(config: PoissonCusumConfig, state: PoissonCusumState, i: number): boolean {
  const a = i * config.intervalMs;
  return state.peaks.some((p) => p.startsAt < a + config.intervalMs && p.endsAt > a);
}

/** First interval index >= state.next that a peak overlaps, or Infinity. */
function firstPeakInterval(config: PoissonCusumConfig, state: PoissonCusumState): number {
  let first = Number.POSITIVE_INFINITY;
  for (const p of state.peaks) first = Math.min(first, Math.floor(p.startsAt / config.intervalMs));
  return Math.max(first, state.next);
}

/** First interval index >= from that no peak overlaps (from is assumed to be overlapped). */
function peakCoverEnd(config: PoissonCusumConfig, state: PoissonCusumState, from: number): number {
  let end = from;
  // Peaks are sorted by start, so one pass extends the covered stretch through chained peaks.
  for (const p of state.peaks) {
    if (Math.floor(p.startsAt / config.intervalMs) > end) break;
    end = Math.max(end, Math.ceil(p.endsAt / config.intervalMs));
  }
  return end;
}

/**
 * The in-control count for interval i: max(base, planned events + base × uncovered share), or base
 * when no peak overlaps i. Overlapping peaks add up: a partner key sees each of its campaigns' sales.
 */
function inControlRate(
  config: PoissonCusumConfig,
  state: PoissonCusumState,
  i: number,
  base: number,
): number {
  const a = i * config.intervalMs;
  const b = a + config.intervalMs;
  let planned = 0;
  let covered = 0;
  for (const p of state.peaks) {
    if (p.startsAt >= b) break;
    const overlap = Math.min(b, p.endsAt) - Math.max(a, p.startsAt);
    if (overlap <= 0) continue;
    planned += (p.expectedPerMinute * overlap) / MINUTE_MS;
    covered += overlap;
  }
  if (covered === 0) return base;
  return Math.max(base, planned + base * Math.max(0, 1 - covered / config.intervalMs));
}

/**
 * The baseline rate from the discounted sums, with `priorEvents` added to the count: a conservative
 * (upward) estimate while little has been seen, so a sparse key that happened to show no event during
 * its warm-up is not judged against a rate of zero. Its bias, priorEvents / weight, fades as history
 * accumulates.
 */
function level(config: PoissonCusumConfig, sums: { weighted: number; weight: number }): number {
  return sums.weight > 0 ? (sums.weighted + config.priorEvents) / sums.weight : 0;
}

/** Folds one learned interval with `count` events into the baseline. */
function learn(config: PoissonCusumConfig, state: PoissonCusumState, count: number): void {
  const perEvent = 1 - 1 / config.memoryEvents;
  const decay = Math.max(
    1 - 1 / config.minMemoryIntervals,
    (1 - 1 / config.maxMemoryIntervals) * perEvent ** count,
  );
  state.weighted = state.weighted * decay + count;
  state.weight = state.weight * decay + 1;
  state.learned += 1;
}

/** The baseline λ0 (events per interval) outside peaks, or null while the key is warming up. */
export function baselineRate(config: PoissonCusumConfig, state: PoissonCusumState): number | null {
  return state.learned < config.warmupIntervals ? null : Math.max(config.floor, level(config, state));
}

// ---------------------------------------------------------------------------------------------------
// Closing intervals
// ---------------------------------------------------------------------------------------------------

export interface CusumAlarm {
  /** Start (ms) of the interval whose close raised the alarm; it ends at intervalStart + intervalMs. */
  intervalStart: number;
  intervalMs: number;
  /** Start (ms) of the first interval of the rise: where S last left 0. */
  since: number;
  /** Events in the alarm interval, and its in-control expectation. */
  count: number;
  expected: number;
  /** Mean events per interval since `since`, the mean in-control rate over the same span, their ratio. */
  observedPerInterval: number;
  baselinePerInterval: number;
  ratio: number;
  statistic: number;
  threshold: number;
  /** Whether a planned peak overlapped the alarm interval. */
  inPeak: boolean;
}

/**
 * Closes interval `state.next` with `count` events and moves to the next one. Returns the alarm that
 * opens an episode, or null (also for every further crossing inside an open episode).
 */
export function closeInterval(
  config: PoissonCusumConfig,
  state: PoissonCusumState,
  count: number,
): CusumAlarm | null {
  const i = state.next;
  prunePeaks(config, state);
  state.next = i + 1;
  if (state.learned < config.warmupIntervals) {
    if (!overlapsPeak(config, state, i)) learn(config, state, count);
    return null;
  }
  // Inside a run the baseline is the one from before the run: the intervals under suspicion are
  // learned on the side (state.weighted, state.weight) but judged against history they cannot have moved.
  const base = Math.max(config.floor, level(config, state.run ?? state));
  const inPeak = state.peaks.length > 0 && overlapsPeak(config, state, i);
  const rate = inPeak ? inControlRate(config, state, i, base) : base;
  const raw = state.s + count - rate * kPerBaseline(config.shift);
  let s = Math.max(raw, 0);
  let run = state.run;
  if (s > 0) {
    if (run === null) {
      run = {
        start: i,
        count: 0,
        expected: 0,
        intervals: 0,
        weighted: state.weighted,
        weight: state.weight,
        learned: state.learned,
      };
    }
    run.count += count;
    run.expected += rate;
    run.intervals += 1;
  } else {
    run = null;
  }

  let alarm: CusumAlarm | null = null;
  let crossed = false;
  let learns = !inPeak && state.episode === null;
  if (s > config.threshold && run !== null) {
    crossed = true;
    if (state.episode === null) {
      alarm = {
        intervalStart: i * config.intervalMs,
        intervalMs: config.intervalMs,
        since: run.start * config.intervalMs,
        count,
        expected: rate,
        observedPerInterval: run.count / run.intervals,
        baselinePerInterval: run.expected / run.intervals,
        ratio: run.count / run.expected,
        statistic: s,
        threshold: config.threshold,
        inPeak,
      };
      state.episode = { start: run.start, alarmAt: i, quiet: 0 };
      // The rise since the change point is the attack, not history: forget it.
      state.weighted = run.weighted;
      state.weight = run.weight;
      state.learned = run.learned;
      learns = false;
    }
    s = 0;
    run = null;
  }
  state.s = s;
  state.run = run;
  if (learns) learn(config, state, count);

  const episode = state.episode;
  if (episode !== null) {
    episode.quiet = !crossed && s === 0 ? episode.quiet + 1 : 0;
    if (episode.quiet >= config.clearIntervals) {
      state.episode = null;
    } else if (i - episode.alarmAt + 1 >= config.maxEpisodeIntervals) {
      // A rise that outlasts the longest plausible attack is the key's new normal: learn it afresh.
      state.episode = null;
      state.weighted = 0;
      state.weight = 0;
      state.learned = 0;
      state.s = 0;
      state.run = null;
    }
  }
  return alarm;
}

/**
 * Closes every interval before `until` that has not been closed, as intervals with no events. Cheap
 * for long gaps: the common state is advanced in closed form. Empty intervals never raise an alarm
 * (S only falls), so nothing is returned.
 */
export function closeEmptyIntervals(
  config: PoissonCusumConfig,
  state: PoissonCusumState,
  until: number,
): void {
  while (state.next < until) {
    prunePeaks(config, state);
    if (state.episode !== null) {
      closeInterval(config, state, 0);
      continue;
    }
    const peakFrom = firstPeakInterval(config, state);
    if (state.s === 0) {
      if (peakFrom === state.next) {
        // Inside a peak with S = 0 nothing learns and nothing drains: only time moves.
        state.next = Math.min(until, peakCoverEnd(config, state, peakFrom));
        continue;
      }
      // With S = 0 an empty interval only teaches the baseline a zero (warm-up or not).
      foldZeros(config, state, Math.min(until, peakFrom) - state.next);
      continue;
    }
    const run = state.run;
    if (run === null || peakFrom === state.next) {
      closeInterval(config, state, 0);
      continue;
    }
    // S drains: λ0 is the run's frozen baseline, so every empty interval takes the same k off S, and
    // S reaches 0 after ceil(S / k) of them (no alarm, no episode, no peak on the way).
    const rate = Math.max(config.floor, level(config, run));
    const k = rate * kPerBaseline(config.shift);
    const drain = Math.max(1, Math.ceil(state.s / k));
    const g = Math.min(until, peakFrom) - state.next;
    if (drain <= g) {
      state.s = 0;
      state.run = null;
      foldZeros(config, state, drain);
    } else {
      state.s = Math.max(state.s - g * k, 0);
      run.expected += g * rate;
      run.intervals += g;
      foldZeros(config, state, g);
    }
  }
}

/**
 * Folds g empty intervals into the baseline. Their discount does not depend on the baseline (no event
 * ticks the event clock), so g of them have a closed form.
 */
function foldZeros(config: PoissonCusumConfig, state: PoissonCusumState, g: number): void {
  const decay = 1 - 1 / config.maxMemoryIntervals;
  const d = decay ** g;
  state.weighted *= d;
  state.weight = state.weight * d + (1 - d) / (1 - decay);
  state.learned += g;
  state.next += g;
}

// ---------------------------------------------------------------------------------------------------
// ARL of the fixed-baseline chart
// ---------------------------------------------------------------------------------------------------

export interface ArlQuery {
  /** λ0, events per interval, taken as known and fixed (no EWMA). */
  baseline: number;
  shift: number;
  threshold: number;
  /** The true rate; the baseline for the in-control ARL, e.g. 3·baseline for a detection delay. */
  rate?: number;
  /** Cap on the Markov chain's size (memory is states² × 8 bytes). */
  maxStates?: number;
}

/**
 * Zero-state ARL in intervals of the Poisson CUSUM with a known, fixed baseline, by the Markov-chain
 * method (Brook & Evans 1972) with S discretized to a grid of 1/r events and k rounded to that grid
 * (as Lucas 1985 did with rational k). Accurate to a few percent when k·r is large; at very low
 * baselines the state cap coarsens the grid and the answer is rougher. Offline use: O(states² · k·r).
 */
export function poissonCusumArl(query: ArlQuery): number {
  const { baseline, shift, threshold } = query;
  const rate = query.rate ?? baseline;
  const maxStates = query.maxStates ?? 1500;
  requireNumber('baseline', baseline, (v) => v > 0);
  requireNumber('shift', shift, (v) => v > 1);
  requireNumber('threshold', threshold, (v) => v > 0);
  requireNumber('rate', rate, (v) => v >= 0);
  const k = referenceValue(baseline, shift);
  let r = Math.max(Math.ceil(32 / k), Math.ceil(64 / threshold));
  if (Math.floor(threshold * r) + 1 > maxStates) r = Math.max(1, Math.floor((maxStates - 1) / threshold));
  const kk = Math.max(1, Math.round(k * r));
  const top = Math.floor(threshold * r);
  const n = top + 1;
  // pmf[x] for every count that can leave some state inside the chart.
  const maxX = Math.ceil((top + kk) / r);
  const pmf = new Float64Array(maxX + 1);
  let logFact = 0;
  for (let x = 0; x <= maxX; x++) {
    if (x > 0) logFact += Math.log(x);
    pmf[x] = rate === 0 ? (x === 0 ? 1 : 0) : Math.exp(x * Math.log(rate) - rate - logFact);
  }
  // (I − Q)·L = 1 over the in-chart states; Q reaches down at most kk states, so elimination stays banded.
  const a = new Float64Array(n * n);
  const b = new Float64Array(n).fill(1);
  for (let s = 0; s < n; s++) {
    a[s * n + s] = (a[s * n + s] as number) + 1;
    for (let x = 0; x <= maxX; x++) {
      const t = s + r * x - kk;
      if (t > top) break;
      const col = Math.max(t, 0);
      a[s * n + col] = (a[s * n + col] as number) - (pmf[x] as number);
    }
  }
  for (let j = 0; j < n; j++) {
    const pivot = a[j * n + j] as number;
    const last = Math.min(n - 1, j + kk);
    for (let i = j + 1; i <= last; i++) {
      const f = (a[i * n + j] as number) / pivot;
      if (f === 0) continue;
      for (let c = j; c < n; c++) a[i * n + c] = (a[i * n + c] as number) - f * (a[j * n + c] as number);
      b[i] = (b[i] as number) - f * (b[j] as number);
    }
  }
  const l = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let acc = b[i] as number;
    for (let c = i + 1; c < n; c++) acc -= (a[i * n + c] as number) * (l[c] as number);
    l[i] = acc / (a[i * n + i] as number);
  }
  return l[0] as number;
}
