import fc from 'fast-check';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryLimiter } from '../../src/limits/memory-limiter.js';

type Op =
  | { op: 'consume' | 'penalty' | 'delete'; key: string }
  | { op: 'set'; key: string; points: number; seconds: number }
  | { op: 'wait'; ms: number };

/** The answer of a call, comparable across the two limiters (a refusal is an answer too). */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    const value = await call;
    return value instanceof RateLimiterRes
      ? { ok: { ...value.toJSON(), first: value.isFirstInDuration } }
      : { ok: value };
  } catch (err) {
    if (!(err instanceof RateLimiterRes)) throw err;
    return { refused: { ...err.toJSON(), first: err.isFirstInDuration } };
  }
}

describe('MemoryLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-06-01T12:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it("answers every call as rate-limiter-flexible's RateLimiterMemory does", async () => {
    const key = fc.constantFrom('a', 'b', 'c');
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constantFrom('consume' as const, 'penalty' as const, 'delete' as const), key }),
      fc.record({
        op: fc.constant('set' as const),
        key,
        points: fc.integer({ min: 0, max: 8 }),
        seconds: fc.integer({ min: 1, max: 20 }),
      }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 6_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const reference = new RateLimiterMemory({ points: 4, duration: 10 });
        const ours = new MemoryLimiter({ points: 4, duration: 10 });
        for (const o of ops) {
          if (o.op === 'wait') {
            vi.advanceTimersByTime(o.ms);
            continue;
          }
          const call = (l: RateLimiterMemory | MemoryLimiter) =>
            o.op === 'set' ? l.set(o.key, o.points, o.seconds) : l[o.op](o.key);
          expect(await outcome(call(ours)), JSON.stringify(o)).toEqual(await outcome(call(reference)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses past its points until the window that began with the first point runs out', async () => {
    const limiter = new MemoryLimiter({ points: 2, duration: 60 });
    await limiter.consume('k');
    vi.advanceTimersByTime(30_000);
    await limiter.consume('k');
    await expect(limiter.consume('k')).rejects.toMatchObject({ consumedPoints: 3, msBeforeNext: 30_000 });
    vi.advanceTimersByTime(30_000);
    await expect(limiter.consume('k')).resolves.toMatchObject({ consumedPoints: 1, msBeforeNext: 60_000 });
  });

  it('drops expired keys as writes pass by, and keeps a longer-lived key among them', async () => {
    const limiter = new MemoryLimiter({ points: 5, duration: 60 });
    await limiter.set('locked', 9, 3_600);
    for (let i = 0; i < 1_000; i++) await limiter.consume(`old-${i}`);
    vi.advanceTimersByTime(61_000);
    for (let i = 0; i < 10; i++) await limiter.consume(`new-${i}`);
    // Ten writes may drop 640 expired keys (the lock they meet moves to the back).
    expect(limiter.size).toBe(1_000 + 1 + 10 - 640);
    for (let i = 10; i < 20; i++) await limiter.consume(`new-${i}`);
    // Every expired key is gone; the lock and the new keys stay.
    expect(limiter.size).toBe(21);
    await expect(limiter.consume('locked')).rejects.toMatchObject({ consumedPoints: 10 });
  });
});
