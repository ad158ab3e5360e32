/**
 * In-process counters for the attempt guard: the calls it makes (consume, penalty, set, delete) with
 * rate-limiter-flexible's semantics and its RateLimiterRes answers — a fixed window per key that starts
 * with the key's first point, extended by nothing, reset once it has run out — but compact. A key is one
 * Map entry with a two-number record, expired lazily: no timer per key as in RateLimiterMemory, which
 * measured ~510 B per key against ~150 B here. Under a flood of distinct callers (every request a new
 * customer and address: two or three keys each, kept a minute) the library's keys were most of the
 * server's memory: 297 MB at ~3,500 requests a second.
 *
 * Expired keys go as writes pass by: each write looks at the oldest few entries and drops the expired
 * ones (keys of one limiter mostly share a duration, so the oldest entries are the first to expire); a
 * live one met there moves to the back. A limiter nobody writes to keeps what it holds until the next
 * writes. Past `maxKeys` the oldest entry is dropped: that key starts counting afresh (a flood of new
 * keys cannot grow the process without bound).
 */
import { RateLimiterRes } from 'rate-limiter-flexible';

export interface MemoryLimiterOptions {
  /** Points a key may consume in its window. */
  points: number;
  /** Window length in seconds (also what penalty uses for a new key). */
  duration: number;
  maxKeys?: number;
}

interface Entry {
  value: number;
  expiresAt: number;
}

/** Entries examined per write: more than one, so the expired ones are dropped faster than keys arrive. */
const SWEEP_PER_WRITE = 3;
const DEFAULT_MAX_KEYS = 500_000;

export class MemoryLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly points: number;
  private readonly durationMs: number;
  private readonly maxKeys: number;

  constructor(options: MemoryLimiterOptions) {
    this.points = options.points;
    this.durationMs = options.duration * 1000;
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
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
    while (this.entries.size > this.maxKeys) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  private sweep(now: number): void {
    let budget = SWEEP_PER_WRITE;
    for (const [key, entry] of this.entries) {
      if (budget-- === 0) return;
      this.entries.delete(key);
      // Still live (a longer window, e.g. a lock): to the back, where it is met again later.
      if (entry.expiresAt > now) this.entries.set(key, entry);
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
