import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  baselineRate,
  type CusumAlarm,
  closeEmptyIntervals,
  closeInterval,
  copyPoissonCusumState,
  DEFAULT_POISSON_CUSUM,
  newPoissonCusumState,
  type PoissonCusumConfig,
  type PoissonCusumState,
  poissonCusumArl,
  poissonCusumConfig,
  referenceValue,
  setPlannedPeaks,
  thresholdForArl,
} from '../../../src/domain/detection/poisson-cusum.js';
import { Rng } from '../../../src/simulate/prng.js';
import { poissonSampler, quantile } from './poisson-sampler.js';

const MINUTE = 60_000;
const RATES = [0.05, 0.5, 5, 50] as const;

/** A key created by its first event: its first interval holds at least one. */
function startKey(config: PoissonCusumConfig, draw: () => number): PoissonCusumState {
  const state = newPoissonCusumState(0);
  let x = draw();
  while (x === 0) x = draw();
  closeInterval(config, state, x);
  return state;
}

/** Runs `n` intervals of `draw`, returning how many alarms were raised. */
function run(config: PoissonCusumConfig, state: PoissonCusumState, draw: () => number, n: number): number {
  let alarms = 0;
  for (let i = 0; i < n; i++) if (closeInterval(config, state, draw()) !== null) alarms++;
  return alarms;
}

describe('threshold and ARL', () => {
  it('k is the Lucas reference value (λ1 − λ0) / ln(λ1/λ0)', () => {
    expect(referenceValue(2, 3)).toBeCloseTo((6 - 2) / Math.log(3), 12);
    expect(thresholdForArl(100_000, 3)).toBeCloseTo(Math.log(100_000) / Math.log(3), 12);
  });

  it('the Markov-chain ARL agrees with simulation of a chart whose baseline is known', () => {
    // Baseline fixed and known: no learning (huge memory), no prior, no warm-up.
    const lambda = 0.5;
    const config = poissonCusumConfig({
      threshold: thresholdForArl(300, 3),
      memoryEvents: 1e12,
      minMemoryIntervals: 1e12,
      maxMemoryIntervals: 1e12,
      priorEvents: 0,
      warmupIntervals: 0,
      clearIntervals: 1,
      maxEpisodeIntervals: 1e9,
    });
    const state = newPoissonCusumState(0);
    state.weighted = lambda * 1e9;
    state.weight = 1e9;
    const n = 600_000;
    const alarms = run(config, state, poissonSampler(lambda, new Rng('markov-check')), n);
    // Each alarm is followed by one quiet interval that ends the episode before the chart can alarm again.
    const simulated = n / alarms - 1;
    const markov = poissonCusumArl({ baseline: lambda, shift: 3, threshold: config.threshold });
    console.log(
      `known baseline 0.5, h=${config.threshold.toFixed(2)}: simulated ARL ${simulated.toFixed(0)}, Markov chain ${markov.toFixed(0)}`,
    );
    expect(simulated / markov).toBeGreaterThan(0.85);
    expect(simulated / markov).toBeLessThan(1.15);
  });

  it('h = ln(ARL)/ln(m) keeps the known-baseline ARL above the target at every rate', () => {
    const h = thresholdForArl(100_000, 3);
    const rows: string[] = [];
    for (const baseline of [0.05, 0.5, 1, 5, 20, 50]) {
      const arl0 = poissonCusumArl({ baseline, shift: 3, threshold: h });
      const arl1 = poissonCusumArl({ baseline, shift: 3, threshold: h, rate: 3 * baseline });
      rows.push(`λ0=${baseline}: ARL0 ${arl0.toExponential(2)}, ARL at 3λ0 ${arl1.toFixed(1)}`);
      expect(arl0).toBeGreaterThan(100_000);
    }
    console.log(`known-baseline ARLs for h=${h.toFixed(2)} (target 1e5), m=3:\n  ${rows.join('\n  ')}`);
  });
});

describe('in control: Poisson traffic at a steady rate', () => {
  // A low target so false alarms are frequent enough to count in a second of simulation. Each rate runs
  // young keys from their first event (warm-up, the noisy first hours) and keys far into their life.
  const target = 1_000;
  const config = poissonCusumConfig({ threshold: thresholdForArl(target, 3) });

  it.each(RATES)('at %s events per interval the empirical ARL is above the target', (lambda) => {
    const rng = new Rng(`in-control-${lambda}`);
    const draw = poissonSampler(lambda, rng);
    let intervals = 0;
    let alarms = 0;
    for (let key = 0; key < 100; key++) {
      const state = startKey(config, draw);
      alarms += run(config, state, draw, 4_000);
      intervals += 4_000;
    }
    const arl = alarms === 0 ? Number.POSITIVE_INFINITY : intervals / alarms;
    console.log(
      `rate ${lambda}/interval, target ARL ${target}: ${alarms} alarms in ${intervals} intervals, ARL ${arl.toFixed(0)}`,
    );
    expect(arl).toBeGreaterThanOrEqual(target);
  });
});

describe('in control at the production threshold: young keys', () => {
  // A key's first hours are when its baseline is least certain; sparse keys are the hard case (a
  // warm-up holds a couple of events). 1e6 key-intervals cannot measure an ARL of 1e5 precisely, but
  // more than 10 false alarms would put it below the target.
  const config = poissonCusumConfig();

  it.each([0.05, 0.5])('at %s events per interval, fewer alarms than the 1e5 target allows', (lambda) => {
    const draw = poissonSampler(lambda, new Rng(`young-${lambda}`));
    let alarms = 0;
    for (let key = 0; key < 400; key++) alarms += run(config, startKey(config, draw), draw, 2_500);
    console.log(
      `young keys at ${lambda}/interval, production defaults: ${alarms} alarms in 400 keys × 2 500 intervals`,
    );
    expect(alarms).toBeLessThanOrEqual(10);
  });
});

describe('detection of a step to 3× the rate', () => {
  // Production defaults: ARL bound 1e5. Lorden's approximation of the delay is ln(1e5) / KL per
  // interval, KL = λ0·(3 ln 3 − 2): 178, 18, 1.8 and 1 intervals — about 25 attack events.
  // A rise can be missed: when the baseline happens to sit well above the true rate as the attack
  // starts, S keeps returning to 0 and the baseline learns the attack (about 1 % at 0.05 per interval).
  const config = poissonCusumConfig();
  const bounds: Record<number, { median: number; p90: number }> = {
    0.05: { median: 200, p90: 400 },
    0.5: { median: 22, p90: 40 },
    5: { median: 3, p90: 5 },
    50: { median: 1, p90: 1 },
  };

  it.each(RATES)('from %s events per interval', (lambda) => {
    const rng = new Rng(`step-${lambda}`);
    const before = poissonSampler(lambda, rng);
    const after = poissonSampler(3 * lambda, rng);
    const delays: number[] = [];
    const cap = Math.ceil(2_000 / lambda) + 100;
    while (delays.length < 150) {
      const state = startKey(config, before);
      if (run(config, state, before, 1_500) > 0) continue;
      let delay = 1;
      let alarm: CusumAlarm | null = null;
      for (; delay <= cap; delay++) {
        alarm = closeInterval(config, state, after());
        if (alarm !== null) break;
      }
      delays.push(delay);
      if (alarm !== null && delays.length === 1) {
        // The report describes the rise: about 3× its baseline since roughly when it began.
        expect(alarm.ratio).toBeGreaterThan(1.5);
        expect(alarm.ratio).toBeLessThan(6);
        expect(alarm.baselinePerInterval).toBeGreaterThan(lambda * 0.6);
        expect(alarm.baselinePerInterval).toBeLessThan(lambda * 1.6);
      }
    }
    delays.sort((a, b) => a - b);
    const median = quantile(delays, 0.5);
    const p90 = quantile(delays, 0.9);
    console.log(
      `rate ${lambda} → ${(3 * lambda).toPrecision(3)}: delay median ${median}, p90 ${p90}, max ${delays.at(-1)} intervals (${(median * 3 * lambda).toFixed(0)} attack events at the median)`,
    );
    expect(median).toBeLessThanOrEqual(bounds[lambda]?.median as number);
    expect(p90).toBeLessThanOrEqual(bounds[lambda]?.p90 as number);
    const missed = delays.filter((d) => d > cap).length;
    console.log(`  missed (no alarm within ${cap} intervals): ${missed} of ${delays.length}`);
    expect(missed).toBeLessThanOrEqual(3);
  });
});

describe('episodes', () => {
  const config = poissonCusumConfig({ warmupIntervals: 10 });

  function warmedUp(lambda: number, seed: string) {
    const rng = new Rng(seed);
    const draw = poissonSampler(lambda, rng);
    const state = newPoissonCusumState(0);
    expect(run(config, state, draw, 600)).toBe(0);
    return { state, draw, rng };
  }

  it('reports a sustained attack once, and learns nothing from it', () => {
    const { state, draw, rng } = warmedUp(2, 'episode');
    const before = baselineRate(config, state) as number;
    const attack = poissonSampler(10, rng);
    const alarms = run(config, state, attack, 200);
    expect(alarms).toBe(1);
    expect(state.episode).not.toBeNull();
    // Back to normal: the episode clears and the baseline is still the pre-attack one.
    expect(run(config, state, draw, 40)).toBe(0);
    expect(state.episode).toBeNull();
    expect(baselineRate(config, state) as number).toBeGreaterThan(before * 0.85);
    expect(baselineRate(config, state) as number).toBeLessThan(before * 1.15);
    // A second attack after the episode ended is a new episode.
    expect(run(config, state, attack, 20)).toBe(1);
  });

  it('on an alarm, rolls the baseline back to its value before the rise began', () => {
    const rng = new Rng('rollback');
    const state = newPoissonCusumState(0);
    run(config, state, poissonSampler(0.5, rng), 800);
    const attack = poissonSampler(1.5, rng);
    const sums = new Map<number, [number, number]>();
    for (let i = 0; i < 2_000; i++) {
      sums.set(state.next, [state.weighted, state.weight]);
      const alarm = closeInterval(config, state, attack());
      if (alarm === null) continue;
      // Intervals between the change point and the alarm were learned on the side, then forgotten.
      expect(alarm.since / MINUTE).toBeLessThan(state.next - 3);
      expect([state.weighted, state.weight]).toEqual(sums.get(alarm.since / MINUTE));
      return;
    }
    expect.unreachable('no alarm');
  });

  it('takes a rise that outlasts maxEpisodeIntervals as the new normal', () => {
    const short = poissonCusumConfig({ warmupIntervals: 10, maxEpisodeIntervals: 60 });
    const rng = new Rng('new-normal');
    const state = newPoissonCusumState(0);
    run(short, state, poissonSampler(2, rng), 300);
    const higher = poissonSampler(8, rng);
    expect(run(short, state, higher, 400)).toBe(1);
    expect(state.episode).toBeNull();
    expect(baselineRate(short, state) as number).toBeGreaterThan(6.5);
  });

  it('raises nothing during warm-up, however busy the key', () => {
    const state = newPoissonCusumState(0);
    for (let i = 0; i < config.warmupIntervals; i++)
      expect(closeInterval(config, state, i === 0 ? 1 : 500)).toBeNull();
    expect(baselineRate(config, state)).not.toBeNull();
  });
});

describe('planned peaks', () => {
  const config = poissonCusumConfig();
  const base = 2;

  function scenario(seed: string, declare: boolean) {
    const rng = new Rng(seed);
    const normal = poissonSampler(base, rng);
    const peakTraffic = poissonSampler(10 * base, rng);
    const state = newPoissonCusumState(0);
    expect(run(config, state, normal, 600)).toBe(0);
    // A two-hour flash sale whose edges fall inside intervals, at 10× the usual rate.
    const startsAt = 620 * MINUTE + 20_000;
    const endsAt = 740 * MINUTE + 40_000;
    if (declare) setPlannedPeaks(config, state, [{ startsAt, endsAt, expectedPerMinute: 10 * base }]);
    run(config, state, normal, 20);
    const before = baselineRate(config, state) as number;
    let alarms = 0;
    while (state.next * MINUTE < endsAt) {
      const a = state.next * MINUTE;
      const share = (Math.min(a + MINUTE, endsAt) - Math.max(a, startsAt)) / MINUTE;
      // Peak traffic for the share of the interval inside the sale, normal traffic for the rest.
      if (closeInterval(config, state, mix(share, peakTraffic, normal, rng)) !== null) alarms++;
    }
    return { state, before, alarms, normal };
  }

  function mix(share: number, peak: () => number, normal: () => number, rng: Rng): number {
    return rng.next() < share ? peak() : normal();
  }

  it('a declared 10× peak raises no alarm, and the baseline after it is the one before', () => {
    for (let seed = 0; seed < 20; seed++) {
      const { state, before, alarms, normal } = scenario(`peak-${seed}`, true);
      expect(alarms).toBe(0);
      expect(baselineRate(config, state)).toBe(before);
      // And the detector is back on its normal footing afterwards.
      expect(run(config, state, normal, 60)).toBe(0);
      expect(state.peaks).toEqual([]);
      expect(baselineRate(config, state) as number).toBeGreaterThan(before * 0.8);
      expect(baselineRate(config, state) as number).toBeLessThan(before * 1.2);
    }
  });

  it('the same traffic without the declaration is an alarm', () => {
    expect(scenario('peak-0', false).alarms).toBe(1);
  });

  it('a peak below the baseline does not lower the in-control rate', () => {
    const state = newPoissonCusumState(0);
    const rng = new Rng('low-peak');
    run(config, state, poissonSampler(5, rng), 300);
    setPlannedPeaks(config, state, [
      { startsAt: 300 * MINUTE, endsAt: 400 * MINUTE, expectedPerMinute: 0.1 },
    ]);
    expect(run(config, state, poissonSampler(5, rng), 100)).toBe(0);
  });

  it('refuses malformed peaks and more than maxPeaks', () => {
    const state = newPoissonCusumState(0);
    expect(() =>
      setPlannedPeaks(config, state, [{ startsAt: 10, endsAt: 10, expectedPerMinute: 1 }]),
    ).toThrow(RangeError);
    expect(() =>
      setPlannedPeaks(config, state, [{ startsAt: 0, endsAt: 10, expectedPerMinute: -1 }]),
    ).toThrow(RangeError);
    const many = Array.from({ length: config.maxPeaks + 1 }, (_, i) => ({
      startsAt: i * MINUTE,
      endsAt: (i + 1) * MINUTE,
      expectedPerMinute: 1,
    }));
    expect(() => setPlannedPeaks(config, state, many)).toThrow(RangeError);
  });
});

describe('gaps', () => {
  const config = poissonCusumConfig({ warmupIntervals: 10 });

  function busyKey(seed: string): PoissonCusumState {
    const state = newPoissonCusumState(0);
    run(config, state, poissonSampler(3, new Rng(seed)), 500);
    return state;
  }

  it('a gap in one call equals the same empty intervals closed one by one', () => {
    const cases: [rate: number, last: number, gap: number][] = [];
    // A last busy interval leaves S > 0 (8 and 11 against k ≈ 5.5 at rate 3; one event against
    // k ≈ 0.55 at 0.3), so the gap starts with S draining; gaps end before, at and after the drain.
    for (const [rate, lasts] of [
      [3, [0, 8, 11]],
      [0.3, [0, 1, 2]],
    ] as const) {
      for (const last of lasts) for (const gap of [1, 2, 3, 7, 360]) cases.push([rate, last, gap]);
    }
    for (const [rate, last, gap] of cases) {
      const a = newPoissonCusumState(0);
      run(config, a, poissonSampler(rate, new Rng(`gap-${rate}`)), 500);
      closeInterval(config, a, last);
      // A declared peak inside the longest gaps: the part stepped one interval at a time.
      setPlannedPeaks(config, a, [{ startsAt: 700 * MINUTE, endsAt: 760 * MINUTE, expectedPerMinute: 30 }]);
      const b = copyPoissonCusumState(a);
      const until = a.next + gap;
      closeEmptyIntervals(config, a, until);
      while (b.next < until) expect(closeInterval(config, b, 0)).toBeNull();
      expect(a.next).toBe(b.next);
      expect(a.learned).toBe(b.learned);
      expect(a.peaks).toEqual(b.peaks);
      expect(a.s).toBeCloseTo(b.s, 9);
      expect(a.run === null).toBe(b.run === null);
      if (a.run !== null && b.run !== null) {
        expect(a.run.intervals).toBe(b.run.intervals);
        expect(a.run.expected).toBeCloseTo(b.run.expected, 9);
      }
      expect(a.weighted).toBeCloseTo(b.weighted, 9);
      expect(a.weight).toBeCloseTo(b.weight, 9);
    }
  });

  it('a key that falls silent lowers its baseline', () => {
    const state = busyKey('silence');
    const before = baselineRate(config, state) as number;
    closeEmptyIntervals(config, state, state.next + 120);
    const after = baselineRate(config, state) as number;
    expect(after).toBeLessThan(before / 2);
    expect(after).toBeGreaterThanOrEqual(config.floor);
  });

  it('is cheap: a trillion empty intervals fold in closed form', () => {
    const state = busyKey('long-gap');
    closeInterval(config, state, 11);
    expect(state.s).toBeGreaterThan(0);
    const started = performance.now();
    closeEmptyIntervals(config, state, state.next + 1e12);
    expect(performance.now() - started).toBeLessThan(50);
    expect(state.s).toBe(0);
    expect(baselineRate(config, state)).toBe(config.floor);
    expect(Number.isFinite(state.weight)).toBe(true);
  });
});

describe('config', () => {
  it('validates', () => {
    expect(poissonCusumConfig()).toEqual(DEFAULT_POISSON_CUSUM);
    expect(() => poissonCusumConfig({ shift: 1 })).toThrow(RangeError);
    expect(() => poissonCusumConfig({ floor: 0 })).toThrow(RangeError);
    expect(() => poissonCusumConfig({ intervalMs: 1.5 })).toThrow(RangeError);
    expect(() => poissonCusumConfig({ maxMemoryIntervals: 10, minMemoryIntervals: 20 })).toThrow(RangeError);
    expect(() => thresholdForArl(1, 3)).toThrow(RangeError);
  });
});

describe('properties', () => {
  const config = poissonCusumConfig({
    warmupIntervals: 3,
    threshold: 4,
    clearIntervals: 2,
    maxEpisodeIntervals: 50,
  });

  it('S is never negative, whatever the counts, gaps and peaks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat(40), fc.record({ gap: fc.integer({ min: 1, max: 5_000 }) })), {
          maxLength: 300,
        }),
        fc.option(
          fc.record({
            start: fc.nat(400),
            length: fc.integer({ min: 1, max: 200 }),
            rate: fc.double({ min: 0, max: 100, noNaN: true }),
          }),
        ),
        (steps, peak) => {
          const state = newPoissonCusumState(0);
          if (peak !== null) {
            setPlannedPeaks(config, state, [
              {
                startsAt: peak.start * MINUTE,
                endsAt: (peak.start + peak.length) * MINUTE,
                expectedPerMinute: peak.rate,
              },
            ]);
          }
          for (const step of steps) {
            if (typeof step === 'number') closeInterval(config, state, step);
            else closeEmptyIntervals(config, state, state.next + step.gap);
            expect(state.s >= 0 && Number.isFinite(state.s) && !Object.is(state.s, -0)).toBe(true);
            expect(state.s <= config.threshold).toBe(true);
            expect(state.run === null).toBe(state.s === 0);
          }
        },
      ),
      { seed: 19, numRuns: 300 },
    );
  });
});
