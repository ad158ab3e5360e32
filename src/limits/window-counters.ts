/**
 * Exact sliding-window counters for the risk features: each key holds members with the time each was
 * last seen, and a count is the number of members seen within the window — distinct values (customers
 * on a device) when the member is the value, events when the member is a unique event id.
 *
 * In memory for one process (the embedded default); in Redis, one sorted set per key (score = time),
 * when API nodes must share them. Each key keeps at most `maxMembersPerKey` members (the newest), so a
 * count saturates there instead of growing without bound under a flood; the in-memory store also keeps
 * at most `maxKeys` keys (`DEFAULT_MAX_KEYS`), dropping the least recently written.
 */
import type { Redis } from 'ioredis';
import { inWindow } from '../domain/risk.js';

export interface WindowQuery {
  key: string;
  windowMs: number;
}

export interface WindowEvent {
  key: string;
  member: string;
  windowMs: number;
}

export interface WindowCounters {
  /** Counts kept in this process: answered without I/O, so a read needs no timeout. */
  readonly inProcess: boolean;
  /** One count per query, in order. Throws when the store cannot answer. */
  count(queries: readonly WindowQuery[], now: number): Promise<number[]>;
  add(events: readonly WindowEvent[], now: number): Promise<void>;
}

export interface WindowCounterOptions {
  maxMembersPerKey: number;
  maxKeys: number;
}

/** How far a count's `now` may lag the latest one (concurrent requests, nodes' clocks) and still be exact. */
const PRUNE_GRACE_MS = 5_000;

/**
 * In memory a key costs ~270 bytes with one member (its strings, its entry, the key's record) and more
 * with several, so 200,000 keys are ~50 MB at most. Keys come
 * from request identifiers (a device, a code, a campaign's new accounts), so a flood of fresh device ids
 * fills them: past the bound the least recently written key is dropped and its counts start again.
 * Shared or busier nodes use Redis.
 */
export const DEFAULT_MAX_KEYS = 200_000;

const DEFAULTS: WindowCounterOptions = { maxMembersPerKey: 10_000, maxKeys: DEFAULT_MAX_KEYS };

interface MemoryKey {
  windowMs: number;
  /**
   * member → last seen, in order of last sight (re-inserted on update); null while the key has never
   * held two members. Most keys hold one (a device or a code seen once), and a Map for one member
   * would cost ~170 bytes more than the two fields below.
   */
  members: Map<string, number> | null;
  /** The only member while `members` is null; null when the key is empty. */
  one: string | null;
  oneSeen: number;
  /** The latest time added, and whether every add came in time order (then insertion order is time order). */
  latest: number;
  ordered: boolean;
}

function sizeOf(entry: MemoryKey): number {
  if (entry.members) return entry.members.size;
  return entry.one === null ? 0 : 1;
}

export class MemoryWindowCounters implements WindowCounters {
  readonly inProcess = true;
  private readonly keys = new Map<string, MemoryKey>();
  private readonly options: WindowCounterOptions;

  constructor(options: Partial<WindowCounterOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  async count(queries: readonly WindowQuery[], now: number): Promise<number[]> {
    return queries.map((q) => {
      const entry = this.keys.get(q.key);
      if (!entry) return 0;
      // Drop what no count can see any more (amortized, each once). Not up to `now` itself: a concurrent
      // decision may count with a `now` a moment earlier and must still see those members.
      this.prune(entry, now - PRUNE_GRACE_MS);
      const members = entry.members;
      if (!members) return entry.one !== null && inWindow(entry.oneSeen, now, q.windowMs) ? 1 : 0;
      if (entry.ordered && q.windowMs >= entry.windowMs) {
        // Members in time order: skip the oldest ones until the first in this query's window; the rest
        // all count. Out of order (concurrent requests recording with slightly different clocks), count
        // them one by one.
        let stale = 0;
        for (const seen of members.values()) {
          if (inWindow(seen, now, q.windowMs)) break;
          stale++;
        }
        return members.size - stale;
      }
      let n = 0;
      for (const seen of members.values()) if (inWindow(seen, now, q.windowMs)) n++;
      return n;
    });
  }

  async add(events: readonly WindowEvent[], now: number): Promise<void> {
    for (const e of events) {
      let entry = this.keys.get(e.key);
      if (entry) {
        // Move the key to the end: the least recently written key is the first one dropped.
        this.keys.delete(e.key);
      } else {
        entry = { windowMs: e.windowMs, members: null, one: null, oneSeen: 0, latest: now, ordered: true };
      }
      if (now < entry.latest) entry.ordered = false;
      entry.latest = Math.max(entry.latest, now);
      this.keys.set(e.key, entry);
      entry.windowMs = Math.max(entry.windowMs, e.windowMs);
      if (entry.members) {
        entry.members.delete(e.member);
        entry.members.set(e.member, now);
      } else if (entry.one === null || entry.one === e.member) {
        entry.one = e.member;
        entry.oneSeen = now;
      } else {
        // A second member: from now on a Map, the first member first (it was seen first).
        entry.members = new Map([
          [entry.one, entry.oneSeen],
          [e.member, now],
        ]);
        entry.one = null;
      }
      this.prune(entry, now - PRUNE_GRACE_MS);
      if (entry.members && entry.members.size > this.options.maxMembersPerKey) {
        const oldest = entry.members.keys().next();
        if (!oldest.done) entry.members.delete(oldest.value);
      }
      if (this.keys.size > this.options.maxKeys) {
        const oldestKey = this.keys.keys().next();
        if (!oldestKey.done) this.keys.delete(oldestKey.value);
      }
    }
  }

  /** Drop members that left the window from the oldest on (all of them only when the key is ordered). */
  private prune(entry: MemoryKey, now: number): void {
    if (entry.members) {
      for (const [member, seen] of entry.members) {
        if (inWindow(seen, now, entry.windowMs)) break;
        entry.members.delete(member);
      }
    } else if (entry.one !== null && !inWindow(entry.oneSeen, now, entry.windowMs)) {
      entry.one = null;
    }
    if (sizeOf(entry) === 0) {
      entry.ordered = true;
      entry.latest = Number.NEGATIVE_INFINITY;
    }
  }

  /** Remove keys whose every member left the window; called periodically so idle keys free memory. */
  sweep(now: number): void {
    for (const [key, entry] of this.keys) {
      if (!entry.ordered && entry.members) {
        for (const [member, seen] of entry.members) {
          if (!inWindow(seen, now, entry.windowMs)) entry.members.delete(member);
        }
      }
      this.prune(entry, now);
      if (sizeOf(entry) === 0) this.keys.delete(key);
    }
  }

  get size(): number {
    return this.keys.size;
  }
}

export class RedisWindowCounters implements WindowCounters {
  readonly inProcess = false;
  private readonly options: WindowCounterOptions;

  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
    options: Partial<WindowCounterOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  private ready(): void {
    // With the offline queue off a command to a disconnected client fails at once, which is what we
    // want: a feature that cannot be read is unavailable now, not after a reconnect timeout.
    if (this.client.status !== 'ready') {
      throw new Error(`Redis connection is not ready (status ${this.client.status})`);
    }
  }

  async count(queries: readonly WindowQuery[], now: number): Promise<number[]> {
    if (queries.length === 0) return [];
    this.ready();
    const pipeline = this.client.pipeline();
    // Exclusive lower bound: a member seen exactly one window ago no longer counts.
    for (const q of queries) pipeline.zcount(this.prefix + q.key, `(${now - q.windowMs}`, '+inf');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return Number(value);
    });
  }

  async add(events: readonly WindowEvent[], now: number): Promise<void> {
    if (events.length === 0) return;
    this.ready();
    const pipeline = this.client.pipeline();
    for (const e of events) {
      const key = this.prefix + e.key;
      pipeline.zadd(key, now, e.member);
      pipeline.zremrangebyscore(key, '-inf', now - e.windowMs);
      pipeline.zremrangebyrank(key, 0, -(this.options.maxMembersPerKey + 1));
      pipeline.pexpire(key, e.windowMs);
    }
    const replies = (await pipeline.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }
}
