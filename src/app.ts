/**
 * The composition root: opens the store, applies migrations, wires services to the event relay.
 * The HTTP server, the CLI and the tests all start from here.
 */

import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Config } from './config.js';
import type { EventBus } from './events/bus.js';
import { InProcessBus } from './events/in-process-bus.js';
import { OutboxRelay, type RelayLogger } from './events/outbox-relay.js';
import { type Clock, systemClock } from './lib/clock.js';
import { AttemptGuard } from './limits/attempt-guard.js';
import { MemoryWindowCounters, RedisWindowCounters } from './limits/window-counters.js';
import { RiskEngine } from './risk/engine.js';
import { CustomerTokens } from './security/customer-tokens.js';
import { IdentifierHasher } from './security/identifier-hasher.js';
import { loadServerSecret } from './security/server-secret.js';
import { StepUpChallenges } from './security/step-up.js';
import { ApiKeyService } from './services/api-keys.js';
import { CampaignService } from './services/campaigns.js';
import { PatternIndex } from './services/code-patterns.js';
import { CodeService } from './services/codes.js';
import type { ServiceContext } from './services/context.js';
import { ControlService } from './services/controls.js';
import { Defenses } from './services/defenses.js';
import { ListService } from './services/lists.js';
import { PointsService } from './services/points.js';
import { ReconciliationService } from './services/reconciliation.js';
import { RedemptionService } from './services/redemptions.js';
import { ReviewService } from './services/reviews.js';
import { RuleService } from './services/rules.js';
import { type Backend, openDatabase } from './store/connect.js';
import { migrateToLatest } from './store/migrate.js';
import type { Database } from './store/schema.js';
import { secretStore } from './store/secrets.js';

export interface App {
  db: Kysely<Database>;
  backend: Backend;
  config: Config;
  bus: EventBus;
  relay: OutboxRelay;
  apiKeys: ApiKeyService;
  campaigns: CampaignService;
  codes: CodeService;
  redemptions: RedemptionService;
  points: PointsService;
  lists: ListService;
  controls: ControlService;
  hasher: IdentifierHasher;
  customerTokens: CustomerTokens;
  risk: RiskEngine;
  rules: RuleService;
  reviews: ReviewService;
  reconciliation: ReconciliationService;
  close(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  logger: RelayLogger;
  clock?: Clock;
  /** Use this database instead of opening one from the config (tests). */
  database?: { db: Kysely<Database>; backend: Backend; close(): Promise<void> };
  /** Start the outbox relay and background jobs (off for one-shot CLI commands). */
  relay?: boolean;
  /** How often the expired-coupon refund job runs (ms). */
  jobIntervalMs?: number;
  /** How often each node asks whether a scheduled reconciliation is due (ms). */
  reconciliationTickMs?: number;
}

async function waitUntilReady(redis: Redis, ms: number, logger: RelayLogger): Promise<void> {
  if (redis.status === 'ready') return;
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!ready) logger.error({}, 'redis not ready after 5 s; rate limits fail open until it is');
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const database =
    options.database ??
    (await openDatabase<Database>({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.DATABASE_URL ? undefined : config.PROMOGUARD_DATA_DIR,
      poolSize: config.DATABASE_POOL_SIZE,
      pgliteSharedBuffersMb: config.PGLITE_SHARED_BUFFERS_MB,
    }));
  try {
    await migrateToLatest(database.db as Kysely<unknown>);
  } catch (err) {
    await database.close();
    throw err;
  }
  const bus = new InProcessBus();
  const relay = new OutboxRelay(database.db, bus, { pollMs: config.OUTBOX_POLL_MS, logger: options.logger });
  const ctx: ServiceContext = {
    db: database.db,
    clock: options.clock ?? systemClock,
    afterCommit: () => relay.notify(),
  };
  const patterns = new PatternIndex(CodeService.patternLoader(ctx));
  await patterns.refresh();
  // The node whose relay delivers the event learns of a new batch at once. Relays compete for events,
  // so every other node learns from the database: the shapes are re-read on the relay's cadence.
  bus.subscribe((event) => {
    if (event.type === 'code.batch_generated') {
      const p = event.payload as { prefix: string; random_length: number };
      patterns.add({ prefix: p.prefix, randomLength: p.random_length });
    }
  });
  const { clock } = ctx;
  const secret = await loadServerSecret(secretStore(database.db), config.PROMOGUARD_SECRET);
  const points = new PointsService(ctx, patterns);
  const hasher = new IdentifierHasher(secret);
  const lists = new ListService(ctx, hasher, (err) =>
    options.logger.error({ err }, 'list refresh failed; judging with the copy in memory'),
  );
  const redis = config.REDIS_URL
    ? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    : null;
  redis?.on('error', (err) => options.logger.error({ err }, 'redis error'));
  // Serve only once Redis answers (or 5 s passed): until then the limits would fail open.
  if (redis) await waitUntilReady(redis, 5_000, options.logger);
  const guardOptions = {
    attemptsPerMinute: config.RATE_LIMIT_PER_MINUTE,
    failuresBeforeLock: config.LOCKOUT_AFTER_FAILURES,
    baseLockSeconds: config.LOCKOUT_BASE_SECONDS,
    maxLockSeconds: config.LOCKOUT_MAX_SECONDS,
    keyPrefix: config.REDIS_KEY_PREFIX,
    // Rate limits fail open (with a log line) when Redis is away; caps never depend on Redis.
    onError: (err: unknown) => options.logger.error({ err }, 'rate limiter store unavailable; failing open'),
  };
  const guard = redis ? AttemptGuard.redis(redis, guardOptions) : AttemptGuard.memory(guardOptions);
  // Client addresses get limits of their own: one address is often many people (NAT, offices).
  const addressOptions = {
    ...guardOptions,
    attemptsPerMinute: config.RATE_LIMIT_PER_MINUTE_PER_ADDRESS,
    failuresBeforeLock: config.LOCKOUT_AFTER_FAILURES_PER_ADDRESS,
    keyPrefix: `${config.REDIS_KEY_PREFIX}:address`,
  };
  const addressGuard = redis
    ? AttemptGuard.redis(redis, addressOptions)
    : AttemptGuard.memory(addressOptions);
  const defenses = new Defenses(hasher, lists, guard, addressGuard);
  const memoryCounters = redis ? null : new MemoryWindowCounters({ maxKeys: config.RISK_COUNTERS_MAX_KEYS });
  const counters = redis
    ? new RedisWindowCounters(redis, `${config.REDIS_KEY_PREFIX}:risk:`)
    : memoryCounters;
  const risk = new RiskEngine(ctx.db, counters as NonNullable<typeof counters>, (err, what) =>
    options.logger.error({ err }, what),
  );
  const rules = new RuleService(ctx, risk);
  if (config.RISK_DEFAULT_PACK === 'on') await rules.seedDefaultPack();
  let counterSweep: NodeJS.Timeout | undefined;
  if (memoryCounters) {
    // Keys whose members all left their window are dropped, so idle devices and addresses free memory.
    counterSweep = setInterval(() => memoryCounters.sweep(clock.now().getTime()), 60_000);
    counterSweep.unref();
  }
  let jobs: NodeJS.Timeout | undefined;
  let patternRefresh: NodeJS.Timeout | undefined;
  if (options.relay !== false) {
    relay.start();
    patternRefresh = setInterval(() => {
      patterns.refresh().catch((err: unknown) => options.logger.error({ err }, 'pattern refresh failed'));
    }, config.OUTBOX_POLL_MS);
    patternRefresh.unref();
    jobs = setInterval(() => {
      points.refundExpired().catch((err: unknown) => options.logger.error({ err }, 'refund job failed'));
    }, options.jobIntervalMs ?? 60_000);
    jobs.unref();
  }
  const reconciliation = new ReconciliationService(ctx, {
    intervalMinutes: config.RECONCILIATION_INTERVAL_MINUTES,
    logger: options.logger,
  });
  if (options.relay !== false) reconciliation.startSchedule(options.reconciliationTickMs);
  let closed = false;
  const campaigns = new CampaignService(ctx);
  return {
    db: database.db,
    backend: database.backend,
    config,
    bus,
    relay,
    apiKeys: new ApiKeyService(ctx),
    campaigns,
    controls: new ControlService(ctx, campaigns),
    codes: new CodeService(ctx, patterns),
    redemptions: new RedemptionService(ctx, patterns, defenses, risk, new StepUpChallenges(secret, clock)),
    points,
    lists,
    hasher,
    customerTokens: new CustomerTokens(secret, clock),
    risk,
    rules,
    reviews: new ReviewService(ctx),
    reconciliation,
    async close() {
      if (closed) return;
      closed = true;
      // A run in progress closes its report (interrupted) while the database is still open.
      await reconciliation.stop();
      if (counterSweep) clearInterval(counterSweep);
      await risk.settled();
      if (jobs) clearInterval(jobs);
      if (patternRefresh) clearInterval(patternRefresh);
      await relay.stop();
      await bus.close();
      await database.close();
      redis?.disconnect();
    },
  };
}
