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
