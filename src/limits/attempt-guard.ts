/**
 * The attempt guard: per-key rate limits and brute-force locks in front of code validation and redemption.
 *
 * Every attempt is counted against each key the caller derived (IP or IPv6 /64, customer, device). A key
 * over its per-minute rate, or locked after a run of consecutive failures, refuses the attempt with a
 * Retry-After. Locks grow along a ladder (base, 2x, 4x, … up to a cap) so a guessing attacker slows down
 * geometrically, and a success resets both the failure run and the ladder.
 *
 * Counters live in rate-limiter-flexible's RateLimiterRedis when API nodes must share them, and for the
 * single-process default in process memory (MemoryLimiter: the same calls and answers, a fraction of the
 * memory per key). On Redis the guard holds no state of its own, so two nodes behind
 * a load balancer see the same counts and locks.
 *
 * Store failures fail OPEN (the attempt is allowed and `onError` is told): these are rate limits, not
 * caps. Caps are enforced by atomic SQL in the database and still hold while Redis is down; refusing
 * every redemption because the limiter store is unreachable would turn a Redis outage into a checkout
 * outage.
 */
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { MemoryLimiter } from './memory-limiter.js';

export interface AttemptGuardOptions {
  /** Attempts per key in a fixed one-minute window that starts with the key's first attempt. */
  attemptsPerMinute: number;
  /** Consecutive failures (no success in between) that lock a key. */
  failuresBeforeLock: number;
  /** Length of the first lock; each further lock in a row doubles it. */
  baseLockSeconds: number;
  /** No lock lasts longer than this. */
  maxLockSeconds: number;
  /**
   * A key that has not been locked for this long (counted from the end of its last lock) starts the ladder
   * again at baseLockSeconds. A failure run also lapses this long after its first failure, so store
   * entries never live forever.
   */
  ladderResetSeconds: number;
  /** Namespace of every key this guard writes to its store. */
  keyPrefix: string;
  /** Told about every store error the guard swallowed while failing open; wire it to the log and metrics. */
  onError?: GuardErrorHandler;
  /**
   * Redis only: a store call for one key that takes longer than this counts as a store error, so a Redis
   * that stops answering (rather than refusing connections) delays callers by this much at most.
   */
  storeTimeoutMs?: number;
}

export const DEFAULT_GUARD_OPTIONS: AttemptGuardOptions = Object.freeze({
  attemptsPerMinute: 60,
  failuresBeforeLock: 10,
  baseLockSeconds: 60,
  maxLockSeconds: 86_400,
  ladderResetSeconds: 86_400,
  keyPrefix: 'pg:guard',
});

export const DEFAULT_STORE_TIMEOUT_MS = 500;

export type GuardKind = 'ip' | 'customer' | 'device';
/** `value` is already normalized (IPv6 to its /64) or hashed by the caller. */
export interface GuardKey {
  kind: GuardKind;
  value: string;
}

export type GuardVerdict =
  | { allowed: true }
  | { allowed: false; reason: 'rate_limited' | 'locked'; retryAfterSeconds: number; key: GuardKey };

export type GuardOperation = 'check' | 'recordFailure' | 'recordSuccess';
export interface GuardErrorContext {
  operation: GuardOperation;
  key: GuardKey;
}
export type GuardErrorHandler = (error: unknown, context: GuardErrorContext) => void;

type Refusal = Extract<GuardVerdict, { allowed: false }>;

const ALLOWED: GuardVerdict = Object.freeze({ allowed: true });
const KINDS: ReadonlySet<string> = new Set<GuardKind>(['ip', 'customer', 'device']);

/**
 * A lock is written into the key's attempt counter as this many attempts. One consume then tells all
 * three states apart (allowed, over the rate, locked) in a single store round trip; a plain block() would
 * write `points + 1`, which looks exactly like a caller who is merely over the rate.
 */
const LOCK_MARK = 1_000_000_000_000;
const WINDOW_SECONDS = 60;
// No entry lives past 2^31-1 ms (24.8 days), the longest a Node.js timer waits and rate-limiter-flexible's
// bound: the options are refused beyond it on either store, so a setting means the same on both.
const MAX_ENTRY_SECONDS = 2_147_483;

/** The calls the guard makes: rate-limiter-flexible's limiter API (RateLimiterRedis, or MemoryLimiter in process). */
interface Limiter {
  consume(key: string): Promise<RateLimiterRes>;
  penalty(key: string): Promise<RateLimiterRes>;
  set(key: string, points: number, secDuration: number): Promise<RateLimiterRes>;
  delete(key: string): Promise<boolean>;
}

interface Limiters {
  /** Attempts in the current minute, or LOCK_MARK+ while the key is locked. */
  attempts: Limiter;
  /** Failures since the last success or lock. */
  failures: Limiter;
  /** Locks in a row: the rung of the ladder the next lock climbs to. */
  ladder: Limiter;
}

interface GuardStore {
  limiters: Limiters;
  /** Why the store cannot serve right now, or undefined when it can. */
  unavailable(): string | undefined;
  timeoutMs: number | undefined;
}

type ResolvedOptions = Required<AttemptGuardOptions>;

export class AttemptGuard {
  private constructor(
    private readonly store: GuardStore,
    private readonly options: ResolvedOptions,
  ) {}

  /** Counters in this process only: right for one API node, wrong for several (each would allow the limit). */
  static memory(options: Partial<AttemptGuardOptions> = {}): AttemptGuard {
    const resolved = resolveOptions(options);
    // Each limiter has a Map of its own: no key prefix needed in process.
    const limiters = makeLimiters(
      resolved,
      (_keyPrefix, points, duration) => new MemoryLimiter({ points, duration }),
    );
    return new AttemptGuard({ limiters, unavailable: () => undefined, timeoutMs: undefined }, resolved);
  }

  /**
   * Counters in Redis, shared by every node using the same keyPrefix. The client should be connected
   * before traffic arrives: while it is not ready, the guard fails open rather than queueing commands.
   */
  static redis(client: Redis, options: Partial<AttemptGuardOptions> = {}): AttemptGuard {
    const resolved = resolveOptions(options);
    const limiters = makeLimiters(resolved, (keyPrefix, points, duration) => {
      // ioredis is the library's default client, so useRedisPackage stays off. rejectIfRedisNotReady: with
      // Redis down, ioredis would otherwise hold each command in its offline queue through its retries,
      // and every attempt would wait that long before failing open.
      return new RateLimiterRedis({
        storeClient: client,
        keyPrefix,
        points,
        duration,
        rejectIfRedisNotReady: true,
      });
    });
    return new AttemptGuard(
      {
        limiters,
        // Checked before every call, deletes included (rejectIfRedisNotReady only covers reads and upserts).
        unavailable: () =>
          client.status === 'ready' ? undefined : `Redis connection is not ready (status ${client.status})`,
        timeoutMs: resolved.storeTimeoutMs,
      },
      resolved,
    );
  }

  /** Counts one attempt against every key; refuses if any key is locked or over its per-minute rate. */
  async check(keys: GuardKey[]): Promise<GuardVerdict> {
    const { attempts } = this.store.limiters;
    // All keys at once: one store round trip per key, and the caller waits for one, not for their sum.
    const refusals = await Promise.all(
      distinctKeys(keys).map((key) =>
        this.guarded('check', key, async () => {
          try {
            await attempts.consume(storeKey(key));
            return undefined;
          } catch (rejection) {
            if (!(rejection instanceof RateLimiterRes)) throw rejection;
            const reason = rejection.consumedPoints >= LOCK_MARK ? 'locked' : 'rate_limited';
            return refusal(key, reason, rejection.msBeforeNext);
          }
        }),
      ),
    );
    return strictest(refusals);
  }

  /**
   * A failed attempt (unknown/used/invalid code): counts toward the consecutive-failure lock of every key.
   * Returns the lock verdict when this failure locked a key (the longest lock if it locked several).
   * Failures count even while a key is locked: they come from attempts that passed check() before the
   * lock was written, and they push the key up the ladder like any other run of failures.
   */
  async recordFailure(keys: GuardKey[]): Promise<GuardVerdict> {
    const { failures } = this.store.limiters;
    const locks = await Promise.all(
      distinctKeys(keys).map((key) =>
        this.guarded('recordFailure', key, async () => {
          const run = await failures.penalty(storeKey(key));
          // >= rather than ===: if failuresBeforeLock is lowered while runs are in flight, those keys must
          // still lock. Two failures racing past the threshold both lock, which only errs longer.
          if (run.consumedPoints < this.options.failuresBeforeLock) return undefined;
          return this.lock(key);
        }),
      ),
    );
    return strictest(locks);
  }

  /** A success resets the consecutive-failure count (and the lock ladder) of every key. */
  async recordSuccess(keys: GuardKey[]): Promise<void> {
    const { failures, ladder } = this.store.limiters;
    await Promise.all(
      distinctKeys(keys).map((key) =>
        this.guarded('recordSuccess', key, async () => {
          const id = storeKey(key);
          await Promise.all([failures.delete(id), ladder.delete(id)]);
        }),
      ),
    );
  }

  private async lock(key: GuardKey): Promise<Refusal> {
    const { attempts, failures, ladder } = this.store.limiters;
    const id = storeKey(key);
    const rung = (await ladder.penalty(id)).consumedPoints;
    const lockSeconds = this.lockSeconds(rung);
    const [locked, ...rest] = await Promise.allSettled([
      attempts.set(id, LOCK_MARK, lockSeconds),
      // Re-set so the ladder lapses ladderResetSeconds after this lock ends, not after the first one.
      ladder.set(id, rung, lockSeconds + this.options.ladderResetSeconds),
      // A fresh run after the lock: the next lock needs failuresBeforeLock more failures, and lasts longer.
      failures.delete(id),
    ]);
    if (locked.status === 'rejected') throw locked.reason;
    // The lock itself is in place; the bookkeeping that failed only shortens the next lock or run.
    for (const result of rest) {
      if (result.status === 'rejected') this.report(result.reason, { operation: 'recordFailure', key });
    }
    return refusal(key, 'locked', lockSeconds * 1000);
  }

  private lockSeconds(rung: number): number {
    // The exponent is clamped so a long-lived ladder never overflows to Infinity before the cap applies.
    const doublings = Math.min(Math.max(rung - 1, 0), 40);
    return Math.min(this.options.maxLockSeconds, this.options.baseLockSeconds * 2 ** doublings);
  }

  /** Runs one key's store work; a store error or timeout is reported and treated as "allowed" (fail open). */
  private async guarded<T>(
    operation: GuardOperation,
    key: GuardKey,
    work: () => Promise<T>,
  ): Promise<T | undefined> {
    const unavailable = this.store.unavailable();
    if (unavailable !== undefined) {
      this.report(new Error(unavailable), { operation, key });
      return undefined;
    }
    try {
      return await withTimeout(work(), this.store.timeoutMs);
    } catch (error) {
      this.report(error, { operation, key });
      return undefined;
    }
  }

  private report(error: unknown, context: GuardErrorContext): void {
    try {
      this.options.onError(error, context);
    } catch {
      // A broken log or metrics hook must not turn a failed-open attempt into a failed request.
    }
  }
}

function makeLimiters(
  options: ResolvedOptions,
  make: (keyPrefix: string, points: number, duration: number) => Limiter,
): Limiters {
  return {
    attempts: make(`${options.keyPrefix}:attempts`, options.attemptsPerMinute, WINDOW_SECONDS),
    // Only penalty/delete are used here, so consume's points never decide anything; the threshold is
    // compared in recordFailure.
    failures: make(`${options.keyPrefix}:failures`, options.failuresBeforeLock, options.ladderResetSeconds),
    // Its duration is only the fallback expiry if the re-set in lock() fails.
    ladder: make(`${options.keyPrefix}:ladder`, 1, options.maxLockSeconds + options.ladderResetSeconds),
  };
}

// The kind leads the key, and kinds contain no colon, so `ip:x` and `customer:x` can never collide.
function storeKey(key: GuardKey): string {
  return `${key.kind}:${key.value}`;
}

function distinctKeys(keys: GuardKey[]): GuardKey[] {
  const seen = new Map<string, GuardKey>();
  for (const key of keys) {
    if (!KINDS.has(key.kind)) throw new TypeError(`unknown guard key kind: ${String(key.kind)}`);
    // An empty value would put every caller lacking that identifier into one shared bucket, where they
    // would rate-limit and lock each other out. Callers omit the key instead.
    if (key.value === '') throw new TypeError(`empty ${key.kind} guard key`);
    // The same key twice in one call must count once, not twice.
    seen.set(storeKey(key), key);
  }
  return [...seen.values()];
}

function refusal(key: GuardKey, reason: Refusal['reason'], msBeforeNext: number): Refusal {
  // At least 1: a Retry-After of 0 invites an immediate retry that would be refused again.
  return { allowed: false, reason, retryAfterSeconds: Math.max(1, Math.ceil(msBeforeNext / 1000)), key };
}

/**
 * The refusal the caller must wait out longest; on a tie a lock over a rate limit, else the caller's first
 * key (a stable answer). Allowed if there is none. Also combines the verdicts of several guards.
 */
export function strictest(verdicts: (GuardVerdict | undefined)[]): GuardVerdict {
  let worst: Refusal | undefined;
  for (const candidate of verdicts) {
    if (!candidate || candidate.allowed) continue;
    if (
      !worst ||
      candidate.retryAfterSeconds > worst.retryAfterSeconds ||
      (candidate.retryAfterSeconds === worst.retryAfterSeconds &&
        candidate.reason === 'locked' &&
        worst.reason !== 'locked')
    ) {
      worst = candidate;
    }
  }
  return worst ?? ALLOWED;
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number | undefined): Promise<T> {
  if (timeoutMs === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`attempt guard store call timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  // race() also subscribes to `work`, so a late rejection after the timeout is handled, not unhandled.
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const logToStderr: GuardErrorHandler = (error, { operation, key }) => {
  const message = error instanceof Error ? error.message : String(error);
  // The key value stays out of the log: it identifies a customer or device.
  process.stderr.write(`attempt guard: ${operation} on a ${key.kind} key failed open: ${message}\n`);
};

function resolveOptions(overrides: Partial<AttemptGuardOptions>): ResolvedOptions {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  const options: ResolvedOptions = {
    ...DEFAULT_GUARD_OPTIONS,
    onError: logToStderr,
    storeTimeoutMs: DEFAULT_STORE_TIMEOUT_MS,
    ...defined,
  };
  const positiveInteger = (name: keyof AttemptGuardOptions, value: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new RangeError(`attempt guard option ${name} must be an integer from 1 to ${max}, got ${value}`);
    }
  };
  // The attempt count must never reach the lock mark, or a busy key would read as locked.
  positiveInteger('attemptsPerMinute', options.attemptsPerMinute, LOCK_MARK - 1);
  positiveInteger('failuresBeforeLock', options.failuresBeforeLock);
  // Whole seconds: Redis expiries (SET EX) take whole seconds and the library floors fractions to 0.
  positiveInteger('baseLockSeconds', options.baseLockSeconds);
  positiveInteger('maxLockSeconds', options.maxLockSeconds);
  positiveInteger('ladderResetSeconds', options.ladderResetSeconds);
  positiveInteger('storeTimeoutMs', options.storeTimeoutMs);
  if (options.maxLockSeconds < options.baseLockSeconds) {
    throw new RangeError('attempt guard option maxLockSeconds must not be below baseLockSeconds');
  }
  if (options.maxLockSeconds + options.ladderResetSeconds > MAX_ENTRY_SECONDS) {
    throw new RangeError(
      `attempt guard options maxLockSeconds + ladderResetSeconds must not exceed ${MAX_ENTRY_SECONDS} seconds`,
    );
  }
  if (typeof options.keyPrefix !== 'string' || options.keyPrefix === '') {
    throw new RangeError('attempt guard option keyPrefix must be a non-empty string');
  }
  if (typeof options.onError !== 'function') {
    throw new TypeError('attempt guard option onError must be a function');
  }
  return options;
}
