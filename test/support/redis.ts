/**
 * The stores every attempt-guard suite runs against.
 *
 * Process memory is always present. Redis joins when TEST_REDIS_URL points at a server; every open() gets
 * a keyPrefix of its own and deletes its keys again on close(), so test files and concurrent tests sharing
 * one server never see each other's counters.
 *
 * Under CI the Redis suite is mandatory: a missing TEST_REDIS_URL fails the import instead of quietly
 * testing only the in-memory store.
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { AttemptGuard, type AttemptGuardOptions } from '../../src/limits/attempt-guard.js';

export interface OpenedGuardStore {
  keyPrefix: string;
  /**
   * A new guard on this store. On Redis each guard has a connection of its own, like a separate API node,
   * and all guards from one open() share counts; in memory every guard has counters of its own.
   */
  guard(options?: Partial<AttemptGuardOptions>): Promise<AttemptGuard>;
  close(): Promise<void>;
}

export interface OpenedRedisGuardStore extends OpenedGuardStore {
  /** A connected client to the test server, closed by close(); for tests that break the connection. */
  connect(options?: RedisOptions): Promise<Redis>;
}

export interface TestGuardStore<Opened extends OpenedGuardStore = OpenedGuardStore> {
  name: 'memory' | 'redis';
  /** Whether guards from one open() share counts, as API nodes on one store do. */
  shared: boolean;
  open(): Promise<Opened>;
}

const EXAMPLE_URL = 'redis://127.0.0.1:6379';

const testRedisUrl = process.env['TEST_REDIS_URL'] || undefined;
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

if (!testRedisUrl) {
  if (inCi) {
    throw new Error(
      `TEST_REDIS_URL is not set, but CI requires the Redis suite. Set it, e.g. TEST_REDIS_URL=${EXAMPLE_URL}`,
    );
  }
  // Once per worker process even if the module graph is loaded again for another test file.
  const noticeKey = Symbol.for('promoguard.test.redisSkippedNotice');
  const registry = globalThis as Record<symbol, unknown>;
  if (!registry[noticeKey]) {
    registry[noticeKey] = true;
    process.stderr.write(
      `Redis suite skipped: TEST_REDIS_URL is not set (set TEST_REDIS_URL=${EXAMPLE_URL} to run it); testing the in-memory store only.\n`,
    );
  }
}

function uniquePrefix(): string {
  return `pg:test:${randomBytes(6).toString('hex')}`;
}

const memory: TestGuardStore = {
  name: 'memory',
  shared: false,
  async open() {
    const keyPrefix = uniquePrefix();
    return {
      keyPrefix,
      guard: async (options = {}) => AttemptGuard.memory({ ...options, keyPrefix }),
      close: async () => {},
    };
  },
};

function redis(url: string): TestGuardStore<OpenedRedisGuardStore> {
  return {
    name: 'redis',
    shared: true,
    async open() {
      const keyPrefix = uniquePrefix();
      const clients: Redis[] = [];

      const connect = async (options: RedisOptions = {}) => {
        // lazyConnect + connect(): the guard fails open while its client is not ready, so a test must
        // not start on a connection that is still being made.
        const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, ...options });
        clients.push(client);
        await client.connect();
        return client;
      };

      let closing: Promise<void> | undefined;
      return {
        keyPrefix,
        connect,
        guard: async (options = {}) => AttemptGuard.redis(await connect(), { ...options, keyPrefix }),
        close() {
          closing ??= (async () => {
            try {
              await deleteKeys(url, `${keyPrefix}:*`);
            } finally {
              // disconnect(), not quit(): some tests leave a client already closed or broken on purpose.
              for (const client of clients) client.disconnect();
            }
          })();
          return closing;
        },
      };
    },
  };
}

async function deleteKeys(url: string, pattern: string): Promise<void> {
  const admin = new Redis(url, { lazyConnect: true });
  await admin.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    admin.disconnect();
  }
}

/** The Redis store when TEST_REDIS_URL is set, for tests that only make sense on Redis. */
export const redisStore: TestGuardStore<OpenedRedisGuardStore> | undefined = testRedisUrl
  ? redis(testRedisUrl)
  : undefined;

export const guardStores: TestGuardStore[] = redisStore ? [memory, redisStore] : [memory];
