import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyedDistinctDetectors } from '../../../src/domain/detection/distinct.js';
import { type KeyedAlarm, KeyedDetectors } from '../../../src/domain/detection/keyed-detectors.js';
import { Rng } from '../../../src/simulate/prng.js';
import { poissonSampler } from './poisson-sampler.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2025, 0, 6);

/** Feeds `draw()` events per minute to each key for `minutes`, at random instants inside each minute. */
function feed(
  d: KeyedDetectors,
  keys: string[],
  from: number,
  minutes: number,
  draw: () => number,
  rng: Rng,
) {
  const alarms: KeyedAlarm[] = [];
  for (let m = 0; m < minutes; m++) {
    const start = from + m * MINUTE;
    for (const key of keys) {
      const n = draw();
      for (let e = 0; e < n; e++) d.observe(key, start + Math.floor(rng.next() * MINUTE));
    }
    alarms.push(...d.advance(start + MINUTE));
  }
  return alarms;
}

describe('KeyedDetectors', () => {
  it('raises an alarm for the key under attack only, once, with its figures', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 10 } });
    const rng = new Rng('keyed-attack');
    const quiet = poissonSampler(2, rng);
    const busy = poissonSampler(12, rng);
    const alarms: KeyedAlarm[] = [];
    for (let m = 0; m < 400; m++) {
      const start = T0 + m * MINUTE;
      for (const key of ['campaign:a', 'campaign:b', 'code:X']) {
        const n = key === 'code:X' && m >= 300 ? busy() : quiet();
        for (let e = 0; e < n; e++) d.observe(key, start + Math.floor(rng.next() * MINUTE));
      }
      alarms.push(...d.advance(start + MINUTE));
    }
    expect(alarms).toHaveLength(1);
    const [alarm] = alarms as [KeyedAlarm];
    expect(alarm.key).toBe('code:X');
    expect(alarm.since).toBeGreaterThanOrEqual(T0 + 290 * MINUTE);
    expect(alarm.intervalStart).toBeLessThanOrEqual(T0 + 303 * MINUTE);
    expect(alarm.ratio).toBeGreaterThan(3);
    expect(alarm.baselinePerInterval).toBeGreaterThan(1.5);
    expect(alarm.baselinePerInterval).toBeLessThan(2.6);
    expect(d.inspect('code:X')?.episodeSince).toBe(alarm.since);
  });

  it('check reports within the interval the alarm its close then raises, with the same since', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 10 } });
    const rng = new Rng('keyed-check');
    const quiet = poissonSampler(2, rng);
    feed(d, ['campaign:a'], T0, 60, quiet, rng);
    const burst = T0 + 60 * MINUTE;
    let early: KeyedAlarm | null = null;
    let at = -1;
    for (let e = 0; e < 40; e++) {
      d.observe('campaign:a', burst + e * 100);
      const found = d.check('campaign:a');
      if (found && !early) {
        early = found;
        at = e;
      }
    }
    expect(early).not.toBeNull();
    // Crossed well before the interval ended: after a dozen or so events, not the fortieth.
    expect(at).toBeLessThan(25);
    const closed = d.advance(burst + MINUTE);
    expect(closed).toHaveLength(1);
    expect(closed[0]?.since).toBe(early?.since);
    // The episode is open now: a check in the next interval reports nothing new.
    d.observe('campaign:a', burst + MINUTE + 10);
    expect(d.check('campaign:a')).toBeNull();
  });

  it('check finds nothing for a key that is quiet or unknown', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 10 } });
    const rng = new Rng('keyed-check-quiet');
    feed(d, ['campaign:a'], T0, 60, poissonSampler(2, rng), rng);
    d.observe('campaign:a', T0 + 60 * MINUTE);
    expect(d.check('campaign:a')).toBeNull();
    expect(d.check('campaign:b')).toBeNull();
  });

  it('an interval closes when the clock passes it, not when the key is next seen', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 5 } });
    const rng = new Rng('close-on-advance');
    feed(d, ['k'], T0, 100, poissonSampler(1, rng), rng);
    const burstAt = T0 + 100 * MINUTE;
    for (let e = 0; e < 40; e++) d.observe('k', burstAt + e);
    expect(d.advance(burstAt + MINUTE - 1)).toEqual([]);
    const alarms = d.advance(burstAt + MINUTE);
    expect(alarms.map((a) => [a.key, a.intervalStart, a.count])).toEqual([['k', burstAt, 40]]);
  });

  it('an event in a later interval closes the earlier one; its alarm waits for advance', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 5 } });
    const rng = new Rng('event-moves-clock');
    feed(d, ['k'], T0, 100, poissonSampler(1, rng), rng);
    const burstAt = T0 + 100 * MINUTE;
    for (let e = 0; e < 40; e++) d.observe('k', burstAt + e);
    d.observe('other', burstAt + 5 * MINUTE);
    const alarms = d.advance(burstAt + 5 * MINUTE);
    expect(alarms.map((a) => a.intervalStart)).toEqual([burstAt]);
    expect(d.advance(burstAt + 5 * MINUTE)).toEqual([]);
  });

  it('counts a late event in the current interval', () => {
    const d = new KeyedDetectors();
    d.observe('k', T0 + 10 * MINUTE);
    d.observe('k', T0 + 2 * MINUTE);
    expect(d.inspect('k')?.openValue).toBe(2);
    expect(d.stats.lateEvents).toBe(1);
  });

  it('hours of silence cost nothing until the key returns, and lower its baseline', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 10 } });
    const rng = new Rng('silence');
    feed(d, ['k'], T0, 200, poissonSampler(4, rng), rng);
    const before = d.inspect('k')?.baseline as number;
    // Advancing an idle key is free: nothing is closed for it until it is touched or inspected.
    const started = performance.now();
    for (let m = 0; m < 6 * 60; m++) d.advance(T0 + (200 + m) * MINUTE);
    const later = d.inspect('k')?.baseline as number;
    expect(later).toBeLessThan(before / 2);
    // The lazy catch-up on the next event gives what inspect computed on a copy.
    d.observe('k', T0 + 559 * MINUTE);
    expect(d.inspect('k')?.baseline).toBe(later);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('evicts the least recently touched key beyond maxKeys', () => {
    const d = new KeyedDetectors({ maxKeys: 3 });
    d.observe('a', T0);
    d.observe('b', T0);
    d.observe('c', T0 + MINUTE);
    // Touching a in a later interval makes b the oldest.
    d.observe('a', T0 + 2 * MINUTE);
    d.observe('d', T0 + 2 * MINUTE);
    expect(d.keys()).toEqual(['c', 'a', 'd']);
    expect(d.size).toBe(3);
    expect(d.stats.evicted).toBe(1);
    expect(d.has('b')).toBe(false);
    // A burst of new keys in one interval evicts keys touched in that interval too, without harm.
    for (const k of ['e', 'f', 'g', 'h']) d.observe(k, T0 + 2 * MINUTE);
    expect(d.keys()).toEqual(['f', 'g', 'h']);
    expect(d.advance(T0 + 3 * MINUTE)).toEqual([]);
    expect(d.stats.evicted).toBe(5);
  });

  it('drops a key idle for more than idleIntervals', () => {
    const d = new KeyedDetectors({ idleIntervals: 10 });
    d.observe('old', T0);
    d.observe('new', T0 + 5 * MINUTE);
    d.advance(T0 + 10 * MINUTE);
    expect(d.keys()).toEqual(['old', 'new']);
    d.advance(T0 + 11 * MINUTE);
    expect(d.keys()).toEqual(['new']);
    expect(d.stats.idleDropped).toBe(1);
    d.advance(T0 + 100 * MINUTE);
    expect(d.size).toBe(0);
  });

  it('holds 200 000 keys touched once within its bound', () => {
    const d = new KeyedDetectors({ maxKeys: 1_000 });
    for (let i = 0; i < 200_000; i++) d.observe(`ip:${i}`, T0 + Math.floor(i / 10_000) * MINUTE);
    expect(d.size).toBe(1_000);
    expect(d.stats.evicted).toBe(199_000);
  });

  it('planned peaks are per key and need a clock', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 10 } });
    const peak = { startsAt: T0 + 120 * MINUTE, endsAt: T0 + 180 * MINUTE, expectedPerMinute: 40 };
    expect(() => d.setPeaks('campaign:a', [peak])).toThrow(RangeError);
    d.setPeaks('campaign:a', [peak], T0);
    const rng = new Rng('keyed-peak');
    const normal = poissonSampler(4, rng);
    const sale = poissonSampler(40, rng);
    const alarms = feed(d, ['campaign:a', 'campaign:b'], T0, 120, normal, rng);
    const before = d.inspect('campaign:a')?.baseline as number;
    alarms.push(...feed(d, ['campaign:a', 'campaign:b'], T0 + 120 * MINUTE, 60, sale, rng));
    expect(alarms.map((a) => a.key)).toEqual(['campaign:b']);
    expect(d.inspect('campaign:a')?.baseline).toBe(before);
  });

  it('a key given peaks after a quiet hour starts then, and warms up before it may alarm', () => {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 10 } });
    d.observe('campaign:old', T0);
    const start = T0 + 60 * MINUTE;
    d.setPeaks(
      'campaign:new',
      [{ startsAt: start + 100 * MINUTE, endsAt: start + 110 * MINUTE, expectedPerMinute: 9 }],
      start,
    );
    const alarms: KeyedAlarm[] = [];
    for (let m = 0; m < 8; m++) {
      d.observe('campaign:new', start + m * MINUTE + 1_000, 2);
      alarms.push(...d.advance(start + (m + 1) * MINUTE));
    }
    expect(alarms).toEqual([]);
    expect(d.inspect('campaign:new')?.baseline).toBeNull();
  });
});

describe('snapshot and restore', () => {
  /** A container in every state worth persisting: warm-up, runs, an open episode, peaks, pending alarms. */
  function busy(seed: string) {
    const d = new KeyedDetectors({ detector: { warmupIntervals: 20 }, maxKeys: 50, idleIntervals: 30 });
    const rng = new Rng(seed);
    const rates = [0.2, 1, 3, 8];
    d.setPeaks('k0', [{ startsAt: T0 + 200 * MINUTE, endsAt: T0 + 230 * MINUTE, expectedPerMinute: 9 }], T0);
    const events: [string, number][] = [];
    for (let m = 0; m < 240; m++) {
      for (let k = 0; k < 40; k++) {
        const rate = (rates[k % 4] as number) * (k === 7 && m > 180 ? 6 : 1);
        const n = poissonSampler(rate, rng)();
        for (let e = 0; e < n; e++) events.push([`k${k}`, T0 + m * MINUTE + Math.floor(rng.next() * MINUTE)]);
      }
    }
    return { d, events };
  }

  it('round-trips exactly, and the restored container carries on identically', () => {
    const { d, events } = busy('snapshot');
    const split = Math.floor(events.length * 0.8);
    // No advance: events moving the clock leave alarms pending, and the last interval is open.
    for (const [key, t] of events.slice(0, split)) d.observe(key, t);
    const snapshot = d.snapshot();
    expect(snapshot.pending.map((a) => a.key)).toContain('k7');
    expect(snapshot.entries.some((e) => e.state.episode !== null)).toBe(true);
    expect(snapshot.entries.some((e) => e.state.run !== null)).toBe(true);
    expect(snapshot.entries.some((e) => e.open !== null && e.open > 0)).toBe(true);
    expect(snapshot.entries.find((e) => e.key === 'k0')?.state.peaks).toHaveLength(1);
    const text = JSON.stringify(snapshot);
    const restored = KeyedDetectors.restore(JSON.parse(text));
    expect(JSON.stringify(restored.snapshot())).toBe(text);

    const tail: KeyedAlarm[][] = [[], []];
    for (const [key, t] of events.slice(split)) {
      d.observe(key, t);
      restored.observe(key, t);
    }
    for (let m = 0; m < 90; m++) {
      tail[0]?.push(...d.advance(T0 + (240 + m) * MINUTE));
      tail[1]?.push(...restored.advance(T0 + (240 + m) * MINUTE));
    }
    expect(tail[1]).toEqual(tail[0]);
    expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(d.snapshot()));
  });

  it('refuses a snapshot of another kind or version', () => {
    const snapshot = new KeyedDetectors().snapshot();
    expect(() => KeyedDetectors.restore({ ...snapshot, version: 2 as 1 })).toThrow(RangeError);
    const distinct = new KeyedDistinctDetectors().snapshot();
    expect(() => KeyedDetectors.restore(distinct as never)).toThrow(RangeError);
  });
});

describe('order of events within an interval', () => {
  it('does not change alarms or state', () => {
    const event = fc.record({
      key: fc.constantFrom('a', 'b', 'c', 'd'),
      minute: fc.nat(59),
      offset: fc.nat(MINUTE - 1),
      n: fc.integer({ min: 1, max: 6 }),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 400 }), fc.nat(), (events, seed) => {
        const options = { detector: { warmupIntervals: 5, threshold: 3 } };
        const byTime = [...events].sort((x, y) => x.minute - y.minute || x.offset - y.offset);
        // The same events, shuffled inside each minute (offsets ignored: any order is legal).
        const rng = new Rng(`shuffle-${seed}`);
        const shuffled: typeof events = [];
        for (let m = 0; m < 60; m++) shuffled.push(...rng.shuffle(byTime.filter((e) => e.minute === m)));
        const outcomes = [byTime, shuffled].map((list) => {
          const d = new KeyedDetectors(options);
          const alarms: KeyedAlarm[] = [];
          let minute = 0;
          for (const e of list) {
            while (minute < e.minute) alarms.push(...d.advance(T0 + ++minute * MINUTE));
            d.observe(e.key, T0 + e.minute * MINUTE + e.offset, e.n);
          }
          alarms.push(...d.advance(T0 + 61 * MINUTE));
          const snapshot = d.snapshot();
          snapshot.entries.sort((x, y) => (x.key < y.key ? -1 : 1));
          return { alarms, snapshot };
        });
        expect(outcomes[1]).toEqual(outcomes[0]);
      }),
      { seed: 7, numRuns: 100 },
    );
  });
});
