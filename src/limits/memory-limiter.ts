/**
 * In-process counters for the attempt guard: the calls it makes (consume, penalty, set, delete) with
 * rate-limiter-flexible's semantics and its RateLimiterRes answers — a fixed window per key that starts
 * with the key's first point, extended by nothing, reset once it has run out — but compact. A key is one
 * Map entry with a two-number record (about 160 bytes), expired lazily, without the timer per key that
 * RateLimiterMemory keeps (about three times that): under a flood of distinct callers (every request a
 * new customer and address, two or three keys each, kept a minute) these keys are most of the server's
 * memory.
 *
 * Expired keys go as writes pass by: each write looks at the oldest entries and drops up to 64 expired
 * ones, stopping at the first live window (keys of one limiter mostly share a duration, so the oldest
 * entries are the first to expire); one set for longer than a window (a lock) met there moves to the
 * back. A limiter nobody writes to keeps what it holds until the next writes. Like the library, it
 * never drops a live key: a lock or a failure run lasts its full time.
 */
import { RateLimiterRes } from 'rate-limiter-flexible';

export interface MemoryLimiterOptions {
  /** Points a key may consume in its window. */
  points: number;
  /** Window length in seconds (also what penalty uses for a new key). */
  duration: number;
}

interface Entry {
  value: number;
  expiresAt: number;
}

/**
 * Expired entries a write may drop: many more than one, so after a lull the keys of the last burst are
 * gone within the first few thousand writes of the next (rather than sharing its peak with its own keys).
 */
const DROP_PER_WRITE = 64;
/** Long-lived entries (locks) a write may move to the back. */
const MOVE_PER_WRITE = 3;

export class MemoryLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly points: number;
  private readonly durationMs: number;

  constructor(options: MemoryLimiterOptions) {
    this.points = options.points;
    this.durationMs = options.duration * 1000;
  }

  /** Keys held, expired ones not yet dropped included. */
  get size(): number {
    return this.entries.size;
  }

  /** Adds `points`; rejects with the RateLimiterRes when the key is past its points. */
  consume(key: string, points = 1): Promise<RateLimiterRes> {
    const res = this.add(key, points);
    return res.consumedPoints > this.points ? Promise.reject(res) : Promise.resolve(res);
  }

  /** Adds `points`, never refusing. */
  penalty(key: string, points = 1): Promise<RateLimiterRes> {
    return Promise.resolve(this.add(key, points));
  }

  /** Sets the key to `points` for `secDuration` seconds from now (a new window; 0 = no expiry). */
  set(key: string, points: number, secDuration: number): Promise<RateLimiterRes> {
    const now = Date.now();
    const entry = { value: points, expiresAt: expiry(now, secDuration * 1000) };
    this.write(key, entry, now);
    // The library answers a set with the points and the duration only.
    return Promise.resolve(new RateLimiterRes(0, secDuration > 0 ? secDuration * 1000 : -1, points));
  }

  /** True when a live key was deleted (an expired one, not yet dropped, counts as gone). */
  delete(key: string): Promise<boolean> {
    const entry = this.entries.get(key);
    if (entry === undefined) return Promise.resolve(false);
    this.entries.delete(key);
    return Promise.resolve(entry.expiresAt > Date.now());
  }

  private add(key: string, points: number): RateLimiterRes {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      entry.value += points;
      return this.answer(entry, now, false);
    }
    const fresh = { value: points, expiresAt: expiry(now, this.durationMs) };
    this.write(key, fresh, now);
    return this.answer(fresh, now, true);
  }

  private write(key: string, entry: Entry, now: number): void {
    // Deleted first so the key goes to the back: the front stays the oldest.
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.sweep(now);
  }

  private sweep(now: number): void {
    let dropped = 0;
    let moved = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        if (dropped++ === DROP_PER_WRITE) return;
        this.entries.delete(key);
        continue;
      }
      // The oldest window still runs, so the younger ones behind it do too: nothing more to drop now.
      if (entry.expiresAt - now <= this.durationMs) return;
      // Set for longer than a window (a lock): to the back, so it does not hold up the expired behind it.
      if (moved++ === MOVE_PER_WRITE) return;
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
  }

  /** As the library answers: msBeforeNext -1 for a key without expiry. */
  private answer(entry: Entry, now: number, first: boolean): RateLimiterRes {
    const msBeforeNext = entry.expiresAt === Number.POSITIVE_INFINITY ? -1 : entry.expiresAt - now;
    return new RateLimiterRes(Math.max(this.points - entry.value, 0), msBeforeNext, entry.value, first);
  }
}

/** A duration of 0 never expires, as in rate-limiter-flexible. */
function expiry(now: number, durationMs: number): number {
  return durationMs > 0 ? now + durationMs : Number.POSITIVE_INFINITY;
}
