import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DistinctSketch,
  distinctOptions,
  hashValue,
  KeyedDistinctDetectors,
} from '../../../src/domain/detection/distinct.js';
import type { KeyedAlarm } from '../../../src/domain/detection/keyed-detectors.js';
import { Rng } from '../../../src/simulate/prng.js';
import { poissonSampler } from './poisson-sampler.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2025, 0, 6);
const options = distinctOptions();

function sketchOf(values: readonly string[]): DistinctSketch {
  const sketch = new DistinctSketch(options);
  for (const v of values) sketch.add(hashValue(v));
  return sketch;
}

describe('DistinctSketch', () => {
  it('is exact up to exactCap, repeats included', () => {
    const values = Array.from({ length: options.exactCap }, (_, i) => `card-${i}`);
    const sketch = sketchOf([...values, ...values]);
    expect(sketch.isExact).toBe(true);
    expect(sketch.estimate()).toBe(options.exactCap);
    sketch.add(hashValue('one more'));
    expect(sketch.isExact).toBe(false);
  });

  it.each([65, 300, 1_000, 5_000, 50_000])('estimates %i distinct values within 8 % beyond the cap', (n) => {
    const values = Array.from({ length: n }, (_, i) => `device-${i}-${n}`);
    const estimate = sketchOf([...values, ...values.slice(0, n >> 1)]).estimate();
    expect(Math.abs(estimate / n - 1)).toBeLessThan(0.08);
  });

  it('takes 1 KiB of registers at most, and the JSON round-trips', () => {
    for (const n of [0, 10, 2_000]) {
      const sketch = sketchOf(Array.from({ length: n }, (_, i) => `v${i}`));
      const json = JSON.parse(JSON.stringify(sketch.toJSON()));
      if (n > options.exactCap) expect(json.registers).toHaveLength(1024);
      const back = DistinctSketch.fromJSON(json, options);
      expect(back.estimate()).toBe(sketch.estimate());
      expect(back.toJSON()).toEqual(sketch.toJSON());
    }
  });

  it('depends on the set of values, not their order', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 6 }), { maxLength: 300 }), fc.nat(), (values, seed) => {
        const shuffled = new Rng(`d-${seed}`).shuffle(values);
        expect(sketchOf(shuffled).toJSON()).toEqual(sketchOf(values).toJSON());
      }),
      { seed: 3, numRuns: 200 },
    );
  });

  it('validates its options', () => {
    expect(() => distinctOptions({ precision: 3 })).toThrow(RangeError);
    expect(() => distinctOptions({ exactCap: -1 })).toThrow(RangeError);
  });
});

describe('KeyedDistinctDetectors', () => {
  it('alarms when a code is redeemed with many cards, not when one card redeems it often', () => {
    const d = new KeyedDistinctDetectors({ detector: { warmupIntervals: 10 } });
    const rng = new Rng('distinct-ring');
    const usual = poissonSampler(2, rng);
    const alarms: KeyedAlarm[] = [];
    let card = 0;
    for (let m = 0; m < 400; m++) {
      const start = T0 + m * MINUTE;
      // Usual traffic: about two new customers a minute, each with their own card.
      for (const code of ['code:ring', 'code:loyal']) {
        const n = usual();
        for (let e = 0; e < n; e++) d.observe(code, start + e, `card-${card++}`);
      }
      if (m >= 300) {
        // A ring: 15 fresh cards a minute on one code. A loyal customer: 15 redemptions, one card.
        for (let e = 0; e < 15; e++) d.observe('code:ring', start + 100 + e, `ring-card-${card++}`);
        for (let e = 0; e < 15; e++) d.observe('code:loyal', start + 100 + e, 'the-same-card');
      }
      alarms.push(...d.advance(start + MINUTE));
    }
    expect(alarms.map((a) => a.key)).toEqual(['code:ring']);
    expect(alarms[0]?.intervalStart).toBeLessThanOrEqual(T0 + 302 * MINUTE);
  });

  it('snapshots and restores exactly, sketches included', () => {
    const d = new KeyedDistinctDetectors({ distinct: { exactCap: 8 } });
    for (let i = 0; i < 500; i++) d.observe('big', T0 + i, `v${i}`);
    for (let i = 0; i < 5; i++) d.observe('small', T0 + i, `w${i % 3}`);
    const text = JSON.stringify(d.snapshot());
    const restored = KeyedDistinctDetectors.restore(JSON.parse(text));
    expect(JSON.stringify(restored.snapshot())).toBe(text);
    expect(restored.inspect('small')?.openValue).toBe(3);
    expect(Math.abs((restored.inspect('big')?.openValue as number) / 500 - 1)).toBeLessThan(0.08);
    d.observe('big', T0 + MINUTE, 'x');
    restored.observe('big', T0 + MINUTE, 'x');
    expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(d.snapshot()));
  });
});
