/**
 * The attempt guard on every store: per-minute rate limits per key, locks after a run of failures that
 * grow while the attacker keeps failing, resets on success, counts shared between API nodes on Redis, and
 * failing open (with a report) when the store is gone or stops answering.
 *
 * Every test opens a store of its own (its own keyPrefix), so the tests run concurrently and the few that
 * have to wait out a one-second lock overlap instead of adding up.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Redis } from 'ioredis';
import { describe, it, vi } from 'vitest';
import { AttemptGuard, type GuardKey, type GuardVerdict } from '../../src/limits/attempt-guard.js';
import { guardStores, type OpenedGuardStore, redisStore, type TestGuardStore } from '../support/redis.js';

const ip = (value: string): GuardKey => ({ kind: 'ip', value });
const customer = (value: string): GuardKey => ({ kind: 'customer', value });
const device = (value: string): GuardKey => ({ kind: 'device', value });

const ALLOWED: GuardVerdict = { allowed: true };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type OnTestFinished = (fn: () => Promise<void>) => void;

async function open<Opened extends OpenedGuardStore>(
  store: TestGuardStore<Opened>,
  onTestFinished: OnTestFinished,
): Promise<Opened> {
  const opened = await store.open();
  onTestFinished(() => opened.close());
  return opened;
}

/** Records `times` failures and returns the verdicts, the last one first. */
async function fail(guard: AttemptGuard, keys: GuardKey[], times: number): Promise<GuardVerdict[]> {
  const verdicts: GuardVerdict[] = [];
  for (let i = 0; i < times; i++) verdicts.unshift(await guard.recordFailure(keys));
  return verdicts;
}

/** Waits (in real time: the stores expire keys by their own clocks) until a lock has run out. */
async function waitUntilAllowed(guard: AttemptGuard, keys: GuardKey[], limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await guard.check(keys)).allowed) {
    if (Date.now() > deadline) throw new Error(`still refused after ${limitMs} ms`);
    await sleep(100);
  }
}

// Concurrent across the stores as well, so the memory and Redis runs of the waiting tests overlap.
describe.concurrent.each(guardStores.map((store) => [store.name, store] as const))(
  'attempt guard on %s',
  (_name, store) => {
    it.concurrent('refuses the 61st attempt within a minute from one IP while another IP is still allowed', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard();
      const attacker = ip('203.0.113.7');

      for (let i = 0; i < 60; i++) expect(await guard.check([attacker])).toEqual(ALLOWED);
      const refused = await guard.check([attacker]);

      expect(refused).toMatchObject({ allowed: false, reason: 'rate_limited', key: attacker });
      if (refused.allowed) throw new Error('unreachable');
      expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
      expect(await guard.check([ip('203.0.113.8')])).toEqual(ALLOWED);
    });

    it.concurrent('lets exactly 60 of 61 concurrent attempts through', async ({ expect, onTestFinished }) => {
      const guard = await (await open(store, onTestFinished)).guard();

      const verdicts = await Promise.all(Array.from({ length: 61 }, () => guard.check([ip('203.0.113.9')])));

      expect(verdicts.filter((verdict) => verdict.allowed)).toHaveLength(60);
      expect(verdicts.filter((verdict) => !verdict.allowed)).toEqual([
        expect.objectContaining({ reason: 'rate_limited' }),
      ]);
    });

    it.concurrent('counts the same key named twice in one attempt once', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard();
      const key = ip('203.0.113.10');

      for (let i = 0; i < 60; i++) expect(await guard.check([key, { ...key }])).toEqual(ALLOWED);

      expect(await guard.check([key])).toMatchObject({ allowed: false, reason: 'rate_limited' });
    });

    it.concurrent('keeps keys of different kinds apart, and refuses when any one key is over', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard();
      const value = 'same-value';

      for (let i = 0; i < 60; i++) await guard.check([customer(value)]);
      expect(await guard.check([customer(value)])).toMatchObject({ allowed: false, reason: 'rate_limited' });

      expect(await guard.check([ip(value)])).toEqual(ALLOWED);
      expect(await guard.check([device(value)])).toEqual(ALLOWED);
      // A fresh IP does not help a customer who is over the limit; the verdict names the key that refused.
      expect(await guard.check([ip('198.51.100.1'), customer(value)])).toMatchObject({
        allowed: false,
        reason: 'rate_limited',
        key: customer(value),
      });

      await fail(guard, [device(value)], 10);
      expect(await guard.check([device(value)])).toMatchObject({ allowed: false, reason: 'locked' });
      expect(await guard.check([ip(value)])).toEqual(ALLOWED);
    });

    it.concurrent('locks every key of the attempt after 10 consecutive failures', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard();
      const keys = [ip('192.0.2.10'), customer('cus_guessing')];

      for (let i = 0; i < 9; i++) {
        expect(await guard.check(keys)).toEqual(ALLOWED);
        expect(await guard.recordFailure(keys)).toEqual(ALLOWED);
      }
      expect(await guard.check(keys)).toEqual(ALLOWED);
      const tenth = await guard.recordFailure(keys);

      expect(tenth).toMatchObject({ allowed: false, reason: 'locked', retryAfterSeconds: 60 });
      const eleventh = await guard.check(keys);
      expect(eleventh).toMatchObject({ allowed: false, reason: 'locked' });
      if (eleventh.allowed) throw new Error('unreachable');
      expect(eleventh.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(eleventh.retryAfterSeconds).toBeLessThanOrEqual(60);
      // Each key is locked on its own, whoever comes with it next.
      expect(await guard.check([ip('192.0.2.10')])).toMatchObject({ allowed: false, reason: 'locked' });
      expect(await guard.check([ip('192.0.2.99'), customer('cus_guessing')])).toMatchObject({
        allowed: false,
        reason: 'locked',
        key: customer('cus_guessing'),
      });
      expect(await guard.check([ip('192.0.2.99')])).toEqual(ALLOWED);
    });

    it.concurrent('starts the failure count again after a success before the 10th failure', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard();
      const keys = [ip('192.0.2.20'), device('dev_1')];

      expect(await fail(guard, keys, 9)).toEqual(Array(9).fill(ALLOWED));
      await guard.recordSuccess(keys);
      expect(await fail(guard, keys, 9)).toEqual(Array(9).fill(ALLOWED));
      expect(await guard.check(keys)).toEqual(ALLOWED);

      const [tenthSinceSuccess] = await fail(guard, keys, 1);
      expect(tenthSinceSuccess).toMatchObject({ allowed: false, reason: 'locked' });
    });

    it.concurrent('locks for longer each time the failures go on after a lock', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard({ baseLockSeconds: 1 });
      const keys = [ip('192.0.2.30')];

      const [firstLock] = await fail(guard, keys, 10);
      expect(firstLock).toMatchObject({ allowed: false, reason: 'locked', retryAfterSeconds: 1 });
      await waitUntilAllowed(guard, keys);

      // After the lock the key gets a full run of failures again, but the next lock is twice as long.
      expect(await fail(guard, keys, 9)).toEqual(Array(9).fill(ALLOWED));
      const [secondLock] = await fail(guard, keys, 1);
      expect(secondLock).toMatchObject({ allowed: false, reason: 'locked', retryAfterSeconds: 2 });
      const refused = await guard.check(keys);
      expect(refused).toMatchObject({ allowed: false, reason: 'locked' });
      if (refused.allowed || firstLock?.allowed !== false) throw new Error('unreachable');
      expect(refused.retryAfterSeconds).toBeGreaterThan(firstLock.retryAfterSeconds);
    });

    it.concurrent('never locks for longer than maxLockSeconds', async ({ expect, onTestFinished }) => {
      const guard = await (await open(store, onTestFinished)).guard({
        baseLockSeconds: 1,
        maxLockSeconds: 2,
      });
      const keys = [customer('cus_persistent')];

      // Failures that arrive while the key is locked (attempts that passed the check just before) still
      // climb the ladder, so no waiting is needed here.
      const lockLengths: unknown[] = [];
      for (let lock = 0; lock < 3; lock++) {
        const [verdict] = await fail(guard, keys, 10);
        lockLengths.push(verdict?.allowed === false ? verdict.retryAfterSeconds : 'not locked');
      }

      expect(lockLengths).toEqual([1, 2, 2]);
    });

    it.concurrent('starts the lock ladder again after a success', async ({ expect, onTestFinished }) => {
      const guard = await (await open(store, onTestFinished)).guard({ baseLockSeconds: 1 });
      const keys = [ip('192.0.2.40')];

      await fail(guard, keys, 10);
      await waitUntilAllowed(guard, keys);
      await guard.recordSuccess(keys);

      const [lock] = await fail(guard, keys, 10);
      expect(lock).toMatchObject({ allowed: false, reason: 'locked', retryAfterSeconds: 1 });
    });

    it.concurrent('starts the lock ladder again once a key has gone ladderResetSeconds without a lock', async ({
      expect,
      onTestFinished,
    }) => {
      const guard = await (await open(store, onTestFinished)).guard({
        baseLockSeconds: 1,
        ladderResetSeconds: 1,
      });
      const keys = [ip('192.0.2.50')];

      await fail(guard, keys, 10);
      await waitUntilAllowed(guard, keys);
      await sleep(1_100);

      const [lock] = await fail(guard, keys, 10);
      expect(lock).toMatchObject({ allowed: false, reason: 'locked', retryAfterSeconds: 1 });
    });

    if (store.shared) {
      it.concurrent('shares counts and locks between two nodes on one store', async ({
        expect,
        onTestFinished,
      }) => {
        const opened = await open(store, onTestFinished);
        const [nodeA, nodeB] = await Promise.all([opened.guard(), opened.guard()]);
        const busy = ip('203.0.113.50');

        for (let i = 0; i < 30; i++) {
          expect(await nodeA.check([busy])).toEqual(ALLOWED);
          expect(await nodeB.check([busy])).toEqual(ALLOWED);
        }
        expect(await nodeA.check([busy])).toMatchObject({ allowed: false, reason: 'rate_limited' });
        expect(await nodeB.check([busy])).toMatchObject({ allowed: false, reason: 'rate_limited' });

        const guessing = [customer('cus_two_nodes')];
        await fail(nodeA, guessing, 5);
        expect(await fail(nodeB, guessing, 4)).toEqual(Array(4).fill(ALLOWED));
        expect((await fail(nodeB, guessing, 1))[0]).toMatchObject({ allowed: false, reason: 'locked' });
        expect(await nodeA.check(guessing)).toMatchObject({ allowed: false, reason: 'locked' });
      });
    }
  },
);

if (redisStore) {
  const store = redisStore;
  describe('attempt guard on redis when the connection is lost', () => {
    it.concurrent('fails open and reports the error', async ({ expect, onTestFinished }) => {
      const opened = await open(store, onTestFinished);
      const onError = vi.fn();
      const client = await opened.connect();
      const guard = AttemptGuard.redis(client, { keyPrefix: opened.keyPrefix, onError });
      const keys = [ip('192.0.2.60'), customer('cus_outage')];
      await fail(guard, keys, 10);
      expect(await guard.check(keys)).toMatchObject({ allowed: false, reason: 'locked' });

      client.disconnect();

      // Even the locked key gets through: a limiter outage must not become a checkout outage.
      expect(await guard.check(keys)).toEqual(ALLOWED);
      expect(await guard.recordFailure(keys)).toEqual(ALLOWED);
      await expect(guard.recordSuccess(keys)).resolves.toBeUndefined();
      for (const operation of ['check', 'recordFailure', 'recordSuccess']) {
        for (const key of keys) {
          expect(onError).toHaveBeenCalledWith(expect.any(Error), { operation, key });
        }
      }
    });
  });
}

describe('attempt guard on a redis that stops answering', () => {
  it('fails open after storeTimeoutMs and reports the timeout', async ({ expect, onTestFinished }) => {
    // A server that accepts connections and never replies: what a partitioned or wedged Redis looks like.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    // No ready check and no CLIENT SETINFO, whose replies would never come: the client reports itself
    // ready as soon as the TCP connection stands, like a Redis that wedged after the client connected.
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      enableReadyCheck: false,
      disableClientInfo: true,
    });
    onTestFinished(async () => {
      client.disconnect();
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    });
    await client.connect();
    const onError = vi.fn();
    const guard = AttemptGuard.redis(client, { onError, storeTimeoutMs: 100 });

    expect(await guard.check([ip('192.0.2.70')])).toEqual(ALLOWED);
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ message: expect.stringMatching(/timed out/) }),
      {
        operation: 'check',
        key: ip('192.0.2.70'),
      },
    );
  });
});

describe('attempt guard options and keys', () => {
  it('rejects options that cannot work', ({ expect }) => {
    expect(() => AttemptGuard.memory({ attemptsPerMinute: 0 })).toThrow(/attemptsPerMinute/);
    expect(() => AttemptGuard.memory({ baseLockSeconds: 0.5 })).toThrow(/baseLockSeconds/);
    expect(() => AttemptGuard.memory({ baseLockSeconds: 120, maxLockSeconds: 60 })).toThrow(/maxLockSeconds/);
    expect(() => AttemptGuard.memory({ keyPrefix: '' })).toThrow(/keyPrefix/);
  });

  it('takes the documented defaults for options left undefined', async ({ expect }) => {
    const guard = AttemptGuard.memory({ attemptsPerMinute: undefined });
    for (let i = 0; i < 60; i++) await guard.check([ip('192.0.2.80')]);
    expect(await guard.check([ip('192.0.2.80')])).toMatchObject({ allowed: false, reason: 'rate_limited' });
  });

  it('refuses an empty key value instead of pooling every caller into one bucket', async ({ expect }) => {
    const guard = AttemptGuard.memory();
    await expect(guard.check([device('')])).rejects.toThrow(/empty device/);
  });

  it('allows an attempt that names no keys', async ({ expect }) => {
    expect(await AttemptGuard.memory().check([])).toEqual(ALLOWED);
  });
});
