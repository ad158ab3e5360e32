/**
 * The sliding-window counters behind the risk features, in process memory and in Redis: an event at t
 * counts for times in [t, t + W); a member counts once however often it is seen; a key saturates at
 * maxMembersPerKey; the memory store evicts the least recently written key past maxKeys and sweeps
 * idle keys; a Redis store that cannot answer throws (the engine then fails open to review).
 *
 * Redis is the real server named by TEST_REDIS_URL (required under CI by test/support/redis.ts); every
 * test has a key prefix of its own, deleted afterwards. Times are synthetic app-clock instants: Redis
 * expires keys by its own clock after the window, so windows here are long (an hour or more).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MemoryWindowCounters,
  RedisWindowCounters,
  type WindowCounterOptions,
  type WindowCounters,
} from '../../src/limits/window-counters.js';
import { type OpenedRedisGuardStore, redisStore } from '../support/redis.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.parse('2026-06-01T12:00:00Z');

type OnTestFinished = (fn: () => Promise<void>) => void;

interface CounterStore {
  name: 'memory' | 'redis';
  open(options: Partial<WindowCounterOptions>, onTestFinished: OnTestFinished): Promise<WindowCounters>;
}

const memory: CounterStore = {
  name: 'memory',
  open: async (options) => new MemoryWindowCounters(options),
};

async function openRedis(onTestFinished: OnTestFinished): Promise<OpenedRedisGuardStore> {
  if (!redisStore) throw new Error('the Redis store is listed but TEST_REDIS_URL is not set');
  const opened = await redisStore.open();
  onTestFinished(() => opened.close());
  return opened;
}

const redis: CounterStore = {
  name: 'redis',
  async open(options, onTestFinished) {
    const opened = await openRedis(onTestFinished);
    // As the app connects: no offline queue, so a command to a broken connection fails at once.
    const client = await opened.connect({ enableOfflineQueue: false });
    return new RedisWindowCounters(client, `${opened.keyPrefix}:risk:`, options);
  },
};

const stores: CounterStore[] = redisStore ? [memory, redis] : [memory];

const one = async (counters: WindowCounters, key: string, windowMs: number, now: number) => {
  const [n] = await counters.count([{ key, windowMs }], now);
  return n;
};

describe.concurrent.each(stores.map((s) => [s.name, s] as const))('window counters in %s', (_name, store) => {
  it('an event at t counts at t and at t + W - 1, and no longer at t + W', async ({
    expect,
    onTestFinished,
  }) => {
    const counters = await store.open({}, onTestFinished);
    await counters.add([{ key: 'ip:a', member: 'e1', windowMs: HOUR }], T);
    expect(await one(counters, 'ip:a', HOUR, T)).toBe(1);
    expect(await one(counters, 'ip:a', HOUR, T + 1)).toBe(1);
    expect(await one(counters, 'ip:a', HOUR, T + HOUR - 1)).toBe(1);
    expect(await one(counters, 'ip:a', HOUR, T + HOUR)).toBe(0);
    expect(await one(counters, 'ip:a', HOUR, T + HOUR + 1)).toBe(0);
  });

  it('each event leaves the window on its own: a count falls one by one', async ({
    expect,
    onTestFinished,
  }) => {
    const counters = await store.open({}, onTestFinished);
    for (let i = 0; i < 3; i++)
      await counters.add([{ key: 'k', member: `e${i}`, windowMs: HOUR }], T + i * 1000);
    expect(await one(counters, 'k', HOUR, T + 2000)).toBe(3);
    expect(await one(counters, 'k', HOUR, T + HOUR - 1)).toBe(3);
    expect(await one(counters, 'k', HOUR, T + HOUR)).toBe(2);
    expect(await one(counters, 'k', HOUR, T + HOUR + 999)).toBe(2);
    expect(await one(counters, 'k', HOUR, T + HOUR + 1000)).toBe(1);
    expect(await one(counters, 'k', HOUR, T + HOUR + 2000)).toBe(0);
  });

  it('a member counts once; seeing it again renews its window', async ({ expect, onTestFinished }) => {
    const counters = await store.open({}, onTestFinished);
    const add = (member: string, at: number) => counters.add([{ key: 'dv:1', member, windowMs: DAY }], at);
    await add('cus_a', T);
    await add('cus_b', T + 1);
    await add('cus_a', T + 2);
    await add('cus_a', T + 3);
    expect(await one(counters, 'dv:1', DAY, T + 3)).toBe(2);
    // cus_b was last seen at T + 1, cus_a at T + 3.
    expect(await one(counters, 'dv:1', DAY, T + 1 + DAY)).toBe(1);
    expect(await one(counters, 'dv:1', DAY, T + 3 + DAY)).toBe(0);
  });

  it('answers one count per query, in order, and 0 for a key never written', async ({
    expect,
    onTestFinished,
  }) => {
    const counters = await store.open({}, onTestFinished);
    await counters.add(
      [
        { key: 'a', member: '1', windowMs: HOUR },
        { key: 'b', member: '1', windowMs: HOUR },
        { key: 'b', member: '2', windowMs: HOUR },
      ],
      T,
    );
    const counts = await counters.count(
      [
        { key: 'b', windowMs: HOUR },
        { key: 'never', windowMs: HOUR },
        { key: 'a', windowMs: HOUR },
      ],
      T,
    );
    expect(counts).toEqual([2, 0, 1]);
    expect(await counters.count([], T)).toEqual([]);
  });

  it('keys are separate', async ({ expect, onTestFinished }) => {
    const counters = await store.open({}, onTestFinished);
    await counters.add([{ key: 'dc:dev:cmp_1', member: 'red_1', windowMs: DAY }], T);
    expect(await one(counters, 'dc:dev:cmp_2', DAY, T)).toBe(0);
    expect(await one(counters, 'dc:dev:cmp_1', DAY, T)).toBe(1);
  });

  it('events recorded out of time order (concurrent requests) count exactly as well', async ({
    expect,
    onTestFinished,
  }) => {
    const counters = await store.open({}, onTestFinished);
    // A request decided at T + 5 records first, one decided at T records after it.
    await counters.add([{ key: 'dv:late', member: 'cus_b', windowMs: HOUR }], T + 5);
    await counters.add([{ key: 'dv:late', member: 'cus_a', windowMs: HOUR }], T);
    await counters.add([{ key: 'dv:late', member: 'cus_c', windowMs: HOUR }], T + 3);
    // A shorter window over the same key counts its own members.
    expect(await one(counters, 'dv:late', 4, T + 5)).toBe(2);
    expect(await one(counters, 'dv:late', HOUR, T + 5)).toBe(3);
    expect(await one(counters, 'dv:late', HOUR, T + HOUR - 1)).toBe(3);
    expect(await one(counters, 'dv:late', HOUR, T + HOUR)).toBe(2);
    expect(await one(counters, 'dv:late', HOUR, T + HOUR + 3)).toBe(1);
    expect(await one(counters, 'dv:late', HOUR, T + HOUR + 5)).toBe(0);
  });

  it('a count changes nothing: a count for an earlier instant after one for a later instant is the same', async ({
    expect,
    onTestFinished,
  }) => {
    const counters = await store.open({}, onTestFinished);
    await counters.add([{ key: 'ip:x', member: 'e1', windowMs: HOUR }], T);
    await counters.add([{ key: 'ip:x', member: 'e2', windowMs: HOUR }], T + 10);
    // Two decisions in flight: one took its time at T + HOUR, the other a moment before, at T + HOUR - 1
    // (clocks of concurrent requests, or of two nodes, are never in lockstep); the later one counts first.
    expect(await one(counters, 'ip:x', HOUR, T + HOUR)).toBe(1);
    expect(await one(counters, 'ip:x', HOUR, T + HOUR - 1)).toBe(2);
  });

  it('a key saturates at maxMembersPerKey, keeping the newest members', async ({
    expect,
    onTestFinished,
  }) => {
    const counters = await store.open({ maxMembersPerKey: 3 }, onTestFinished);
    for (let i = 0; i < 10; i++)
      await counters.add([{ key: 'flood', member: `m${i}`, windowMs: DAY }], T + i);
    expect(await one(counters, 'flood', DAY, T + 9)).toBe(3);
    // The three kept are the newest (seen at T + 7, 8, 9): they leave the window one by one from T + 7 + DAY.
    expect(await one(counters, 'flood', DAY, T + 6 + DAY)).toBe(3);
    expect(await one(counters, 'flood', DAY, T + 7 + DAY)).toBe(2);
    expect(await one(counters, 'flood', DAY, T + 9 + DAY)).toBe(0);
  });

  it('a flood of events in one call saturates as well', async ({ expect, onTestFinished }) => {
    const counters = await store.open({ maxMembersPerKey: 5 }, onTestFinished);
    await counters.add(
      Array.from({ length: 50 }, (_, i) => ({ key: 'burst', member: `e${i}`, windowMs: HOUR })),
      T,
    );
    expect(await one(counters, 'burst', HOUR, T)).toBe(5);
  });
});

describe('memory window counters: bounded memory', () => {
  it('keeps at most maxKeys keys, dropping the least recently written', async () => {
    const counters = new MemoryWindowCounters({ maxKeys: 2 });
    await counters.add([{ key: 'a', member: '1', windowMs: HOUR }], T);
    await counters.add([{ key: 'b', member: '1', windowMs: HOUR }], T);
    // Writing `a` again makes `b` the least recently written.
    await counters.add([{ key: 'a', member: '2', windowMs: HOUR }], T);
    await counters.add([{ key: 'c', member: '1', windowMs: HOUR }], T);
    expect(counters.size).toBe(2);
    expect(
      await counters.count(
        ['a', 'b', 'c'].map((key) => ({ key, windowMs: HOUR })),
        T,
      ),
    ).toEqual([2, 0, 1]);
  });

  it('sweep drops keys whose every member left the window, and keeps the others', async () => {
    const counters = new MemoryWindowCounters();
    await counters.add([{ key: 'old', member: '1', windowMs: HOUR }], T);
    await counters.add([{ key: 'new', member: '1', windowMs: HOUR }], T + 10);
    counters.sweep(T + HOUR - 1);
    expect(counters.size).toBe(2);
    counters.sweep(T + HOUR);
    expect(counters.size).toBe(1);
    expect(await one(counters, 'new', HOUR, T + HOUR)).toBe(1);
    counters.sweep(T + HOUR + 10);
    expect(counters.size).toBe(0);
  });

  it('sweep drops a key recorded out of time order once all its members left the window', async () => {
    const counters = new MemoryWindowCounters();
    await counters.add([{ key: 'k', member: 'late', windowMs: HOUR }], T + 10);
    await counters.add([{ key: 'k', member: 'early', windowMs: HOUR }], T);
    counters.sweep(T + HOUR);
    expect(counters.size).toBe(1);
    expect(await one(counters, 'k', HOUR, T + HOUR)).toBe(1);
    counters.sweep(T + HOUR + 10);
    expect(counters.size).toBe(0);
  });

  it('sweep keeps a key while any of its members is still in the window', async () => {
    const counters = new MemoryWindowCounters();
    await counters.add([{ key: 'k', member: '1', windowMs: HOUR }], T);
    await counters.add([{ key: 'k', member: '2', windowMs: HOUR }], T + 5_000);
    counters.sweep(T + HOUR);
    expect(counters.size).toBe(1);
    expect(await one(counters, 'k', HOUR, T + HOUR)).toBe(1);
  });
});

/**
 * The plain meaning of the counters, kept naively: every key remembers each member's last sight (by call
 * order, as the store does), keys are dropped least recently written first past maxKeys, members oldest
 * sight first past maxMembersPerKey; a count is the number of members seen inside the window. The store
 * must answer exactly this while no operation runs more than the prune grace before the latest, and no
 * operation runs before a sweep's instant (a sweep prunes without grace).
 */
class NaiveCounters {
  readonly keys = new Map<string, Map<string, number>>();
  constructor(private readonly options: WindowCounterOptions) {}

  add(key: string, member: string, now: number): void {
    const members = this.keys.get(key) ?? new Map<string, number>();
    this.keys.delete(key);
    this.keys.set(key, members);
    members.delete(member);
    members.set(member, now);
    if (members.size > this.options.maxMembersPerKey) members.delete(members.keys().next().value as string);
    if (this.keys.size > this.options.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
  }

  /** Drops members out of their key's window at `now`, and the keys left empty. */
  sweep(now: number, windowOf: (key: string) => number): void {
    for (const [key, members] of this.keys) {
      for (const [member, seen] of members) if (seen <= now - windowOf(key)) members.delete(member);
      if (members.size === 0) this.keys.delete(key);
    }
  }

  count(key: string, windowMs: number, now: number): number {
    let n = 0;
    for (const seen of this.keys.get(key)?.values() ?? []) if (seen > now - windowMs) n++;
    return n;
  }
}

const GRACE_MS = 5_000;
const KEY_WINDOWS: Record<string, number> = { k0: 10_000, k1: 60_000, k2: HOUR, k3: 10_000, k4: 60_000 };
const windowOf = (key: string) => KEY_WINDOWS[key] as number;

describe('memory window counters: the same answers as the naive model', () => {
  it('holds over random adds, counts and sweeps, in and out of time order, with small bounds', async () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        key: fc.constantFrom(...Object.keys(KEY_WINDOWS)),
        member: fc.constantFrom('a', 'b', 'c', 'd'),
        step: fc.integer({ min: -GRACE_MS, max: 30_000 }),
      }),
      fc.record({
        kind: fc.constant('count' as const),
        key: fc.constantFrom(...Object.keys(KEY_WINDOWS), 'never'),
        step: fc.integer({ min: -GRACE_MS, max: 30_000 }),
      }),
      fc.record({ kind: fc.constant('sweep' as const), step: fc.integer({ min: 0, max: 30_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 80 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 6 }),
        async (ops, maxMembersPerKey, maxKeys) => {
          const options = { maxMembersPerKey, maxKeys };
          const store = new MemoryWindowCounters(options);
          const model = new NaiveCounters(options);
          // `latest`: the latest instant used; `floor`: the last sweep's (nothing may run before it).
          let latest = T;
          let floor = T;
          for (const o of ops) {
            const now = Math.max(floor, latest + o.step);
            latest = Math.max(latest, now);
            if (o.kind === 'add') {
              await store.add(
                [{ key: o.key, member: o.member, windowMs: KEY_WINDOWS[o.key] as number }],
                now,
              );
              model.add(o.key, o.member, now);
            } else if (o.kind === 'count') {
              const windowMs = KEY_WINDOWS[o.key] ?? HOUR;
              const [got] = await store.count([{ key: o.key, windowMs }], now);
              expect(got).toBe(model.count(o.key, windowMs, now));
            } else {
              store.sweep(now);
              model.sweep(now, windowOf);
              floor = now;
            }
          }
          // After a sweep at the end the store keeps exactly the keys that still count something.
          const end = latest + GRACE_MS;
          store.sweep(end);
          model.sweep(end, windowOf);
          for (const key of Object.keys(KEY_WINDOWS)) {
            const [got] = await store.count([{ key, windowMs: KEY_WINDOWS[key] as number }], end);
            expect(got).toBe(model.count(key, KEY_WINDOWS[key] as number, end));
          }
          expect(store.size).toBe(model.keys.size);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe.runIf(redisStore !== undefined)('redis window counters: a store that cannot answer', () => {
  it('throws on count and on add once the connection is gone', async ({ expect, onTestFinished }) => {
    const opened = await openRedis(onTestFinished);
    const client = await opened.connect({ enableOfflineQueue: false });
    const counters = new RedisWindowCounters(client, `${opened.keyPrefix}:risk:`);
    await counters.add([{ key: 'k', member: '1', windowMs: HOUR }], T);
    expect(await one(counters, 'k', HOUR, T)).toBe(1);

    client.disconnect();
    await expect(counters.count([{ key: 'k', windowMs: HOUR }], T)).rejects.toThrow();
    await expect(counters.add([{ key: 'k', member: '2', windowMs: HOUR }], T)).rejects.toThrow();
  });

  it('throws at once when the server was never reached', async ({ expect, onTestFinished }) => {
    const opened = await openRedis(onTestFinished);
    // Nothing listens on port 1: the client keeps trying to connect.
    const { Redis } = await import('ioredis');
    const client = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    client.on('error', () => {});
    onTestFinished(async () => {
      client.disconnect();
    });
    client.connect().catch(() => {});
    const counters = new RedisWindowCounters(client, `${opened.keyPrefix}:risk:`);
    const started = Date.now();
    await expect(counters.count([{ key: 'k', windowMs: HOUR }], T)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('writes its keys under its prefix and lets them expire after the window', async ({
    expect,
    onTestFinished,
  }) => {
    const opened = await openRedis(onTestFinished);
    const client = await opened.connect();
    const prefix = `${opened.keyPrefix}:risk:`;
    const counters = new RedisWindowCounters(client, prefix);
    await counters.add([{ key: 'if:abc', member: 'e1', windowMs: HOUR }], Date.now());
    const ttl = await client.pttl(`${prefix}if:abc`);
    expect(ttl).toBeGreaterThan(HOUR - 60_000);
    expect(ttl).toBeLessThanOrEqual(HOUR);
  });
});
