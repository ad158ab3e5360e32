/**
 * The composition root: opens the store, applies migrations, wires services to the event relay.
 * The HTTP server, the CLI and the tests all start from here.
 */

import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { approvalPolicy, type Config } from './config.js';
import { countAttempts } from './events/attempt-metrics.js';
import type { EventBus } from './events/bus.js';
import { InProcessBus } from './events/in-process-bus.js';
import { EventStreamUnavailable, JetStreamBus } from './events/jetstream-bus.js';
import { OutboxRelay, type RelayLogger } from './events/outbox-relay.js';
import { Telemetry } from './events/telemetry.js';
import { webhookFanout } from './events/webhook-fanout.js';
import { type Clock, systemClock } from './lib/clock.js';
import { AttemptGuard } from './limits/attempt-guard.js';
import { MemoryWindowCounters, RedisWindowCounters } from './limits/window-counters.js';
import { DependencyHealth, type DependencyLogger } from './metrics/dependency-health.js';
import { type DatabaseReading, Metrics } from './metrics/registry.js';
import { RiskEngine } from './risk/engine.js';
import { CsrfTokens } from './security/console-sessions.js';
import { CustomerTokens } from './security/customer-tokens.js';
import { IdentifierHasher } from './security/identifier-hasher.js';
import { PasswordHasher } from './security/passwords.js';
import { loadServerSecret } from './security/server-secret.js';
import { parseAllowList, type Resolver } from './security/ssrf-guard.js';
import { StepUpChallenges } from './security/step-up.js';
import { WebhookSecretBox } from './security/webhook-secrets.js';
import { AlertService } from './services/alerts.js';
import { ApiKeyService } from './services/api-keys.js';
import { ApprovalService } from './services/approvals.js';
import { AuditService } from './services/audit.js';
import { CampaignService } from './services/campaigns.js';
import { PatternIndex } from './services/code-patterns.js';
import { CodeService } from './services/codes.js';
import { ConsoleUserService } from './services/console-users.js';
import type { ServiceContext } from './services/context.js';
import { ControlService } from './services/controls.js';
import { Defenses } from './services/defenses.js';
import { DetectionService, decodeRefusal, refusalSignal } from './services/detection.js';
import { DetectionLeader } from './services/detection-leader.js';
import { ListService } from './services/lists.js';
import { LoyaltyGuard } from './services/loyalty-guard.js';
import { OutcomeService } from './services/outcomes.js';
import { PointsService } from './services/points.js';
import { ReconciliationService } from './services/reconciliation.js';
import { RedemptionService } from './services/redemptions.js';
import { RemediationGate } from './services/remediation-gate.js';
import { RemediationService } from './services/remediations.js';
import { ReviewService } from './services/reviews.js';
import { RuleService } from './services/rules.js';
import { ScoreModelService } from './services/score-models.js';
import { SpendService } from './services/spend.js';
import { WebhookSender } from './services/webhook-sender.js';
import { WebhookService } from './services/webhooks.js';
import { type Backend, type OpenedDatabase, openDatabase } from './store/connect.js';
import { isDatabaseUnavailable } from './store/errors.js';
import { type MetricReadings, readMetrics } from './store/metric-readings.js';
import { migrateToLatest } from './store/migrate.js';
import type { Database } from './store/schema.js';
import { secretStore } from './store/secrets.js';
import { StampedCache } from './store/stamped-cache.js';
import { listReceivingEndpoints } from './store/webhooks.js';

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
  /** The account-takeover path of loyalty operations (customer history, decisions). */
  loyalty: LoyaltyGuard;
  lists: ListService;
  controls: ControlService;
  hasher: IdentifierHasher;
  customerTokens: CustomerTokens;
  risk: RiskEngine;
  rules: RuleService;
  models: ScoreModelService;
  reviews: ReviewService;
  /** Whether the database and Redis answer, as this node sees them (the dependency gauge). */
  dependencies: DependencyHealth;
  approvals: ApprovalService;
  audit: AuditService;
  reconciliation: ReconciliationService;
  /** Discount spend by campaign and period, from the ledger (finance). */
  spend: SpendService;
  /** The Prometheus registry: this node's counters and the database gauges, read on scrape. */
  metrics: Metrics;
  outcomes: OutcomeService;
  /** Every attempt this node serves (validations, redemptions, rollbacks, conversions), in process. */
  telemetry: Telemetry;
  webhooks: WebhookService;
  /** Sends this node's share of the due webhook deliveries. */
  webhookSender: WebhookSender;
  /** Console users, their sign-in and sessions. */
  consoleUsers: ConsoleUserService;
  /** Remediation policies, the remediations they applied (lift, expiry sweep), and their request-path copy. */
  remediations: RemediationService;
  remediationGate: RemediationGate;
  /** Alerts raised by the streaming detectors, as people work them. */
  alerts: AlertService;
  /** The streaming detectors, when DETECTION is on and the relay runs. */
  detection: DetectionService | null;
  /** Holds or waits for the detection lease (null with DETECTION=off). */
  detectionLeader: DetectionLeader | null;
  close(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  /** Errors; `info`, when given, gets a dependency's recovery. */
  logger: RelayLogger & Pick<DependencyLogger, 'info'>;
  clock?: Clock;
  /** Use this database instead of opening one from the config (tests). */
  database?: OpenedDatabase<Database>;
  /** Start the outbox relay and background jobs (off for one-shot CLI commands). */
  relay?: boolean;
  /** How often the expired-coupon refund job runs (ms). */
  jobIntervalMs?: number;
  /** How often each node asks whether a scheduled reconciliation is due (ms). */
  reconciliationTickMs?: number;
  /** How often the detectors close intervals the clock passed (ms; default 1000). */
  detectionTickMs?: number;
  /** Webhook timing and name resolution (tests: a short retry schedule, fixed jitter). */
  webhooks?: {
    schedule?: readonly number[];
    random?: () => number;
    resolve?: Resolver;
    leaseMs?: number;
  };
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
  // Outages are logged when they start, while they last (every 30 s) and when they end; the requests
  // and background jobs that fail meanwhile report to it instead of logging a line each.
  const dependencies = new DependencyHealth({ logger: options.logger, clock: systemClock });
  dependencies.register('database');
  const logger: RelayLogger = {
    error(obj, msg) {
      const err = (obj as { err?: unknown }).err;
      if (isDatabaseUnavailable(err)) dependencies.down('database', err);
      else if (err instanceof EventStreamUnavailable) dependencies.down('nats', err, NATS_DOWN);
      else options.logger.error(obj, msg);
    },
  };
  const database =
    options.database ??
    (await openDatabase<Database>({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.DATABASE_URL ? undefined : config.PROMOGUARD_DATA_DIR,
      poolSize: config.DATABASE_POOL_SIZE,
      pgliteSharedBuffersMb: config.PGLITE_SHARED_BUFFERS_MB,
      statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
      queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_MS,
      connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
      onAvailability: (up, err) =>
        up ? dependencies.up('database') : dependencies.down('database', err, 'requests answer 503'),
    }));
  try {
    const migrate = (db: Kysely<Database>) => migrateToLatest(db as Kysely<unknown>);
    await (database.withoutTimeouts ? database.withoutTimeouts(migrate) : migrate(database.db));
  } catch (err) {
    await database.close();
    throw err;
  }
  const metrics = new Metrics({
    campaignLabelLimit: config.METRICS_CAMPAIGN_LABEL_LIMIT,
    readDatabase: databaseGauges(database, config, options.clock ?? systemClock),
    databaseReadingMs: config.METRICS_DATABASE_READING_MS,
    beforeScrape: () => {
      for (const d of dependencies.state()) {
        metrics.set('promoguard_dependency_up', { dependency: d.dependency }, d.up ? 1 : 0);
      }
      const pool = database.poolStats?.();
      if (pool) {
        metrics.set('promoguard_db_pool_connections', { state: 'in_use' }, pool.inUse);
        metrics.set('promoguard_db_pool_connections', { state: 'idle' }, pool.idle);
        metrics.set('promoguard_db_pool_waiting_requests', {}, pool.waiting);
      }
    },
    onReadError: (err) => logger.error({ err }, 'metrics: the database gauges could not be read'),
  });
  const telemetry = new Telemetry((err) => logger.error({ err }, 'a telemetry listener failed'));
  countAttempts(telemetry, metrics);
  let relay: OutboxRelay | undefined;
  const bus = config.NATS_URL
    ? jetStreamBus(config, {
        onAvailability: (up, err) => {
          if (!up) return dependencies.down('nats', err, NATS_DOWN);
          dependencies.up('nats');
          // What piled up in the outbox goes out now rather than on the next poll.
          relay?.notify();
        },
        onError: (err, what) => logger.error({ err }, what),
      })
    : new InProcessBus();
  relay = new OutboxRelay(database.db, bus, {
    pollMs: config.OUTBOX_POLL_MS,
    logger,
    onPublished: (n) => metrics.inc('promoguard_outbox_published_total', {}, n),
    onDeliveryFailure: () => metrics.inc('promoguard_outbox_delivery_failures_total', {}),
  });
  if (bus instanceof JetStreamBus) {
    dependencies.register('nats', false);
    bus.start();
    // Serve only once NATS answers (or 5 s passed), as with Redis: events wait in the outbox meanwhile.
    if (!(await bus.whenReady(5_000))) options.logger.error({}, `nats not ready after 5 s; ${NATS_DOWN}`);
  }
  const ctx: ServiceContext = {
    db: database.db,
    clock: options.clock ?? systemClock,
    afterCommit: () => relay?.notify(),
    metrics,
    telemetry,
  };
  const patterns = new PatternIndex(CodeService.patternLoader(ctx));
  await patterns.refresh();
  // Every node keeps the shapes in memory, so every node must learn of a new batch (broadcast); adding
  // a shape twice changes nothing, so redeliveries need no deduplication. The shapes are also re-read
  // from the database on the relay's cadence, for a node that was away when the event went by.
  bus.subscribe({
    name: 'pattern-index',
    mode: 'broadcast',
    types: ['code.batch_generated'],
    handler: (event) => {
      const p = event.payload as { prefix: string; random_length: number };
      patterns.add({ prefix: p.prefix, randomLength: p.random_length });
    },
  });
  const { clock } = ctx;
  const secret = await loadServerSecret(secretStore(database.db), config.PROMOGUARD_SECRET);
  const webhookBox = new WebhookSecretBox(secret);
  const webhookAllow = parseAllowList(config.WEBHOOKS_ALLOW_HOSTS);
  const webhookEndpoints = new StampedCache(
    database.db,
    'webhooks',
    () => listReceivingEndpoints(database.db),
    config.OUTBOX_POLL_MS,
    (err) => logger.error({ err }, 'webhook endpoint refresh failed; using the copy in memory'),
  );
  const webhookSender = new WebhookSender(ctx, webhookBox, {
    allow: webhookAllow,
    timeoutMs: config.WEBHOOKS_TIMEOUT_MS,
    maxResponseBytes: config.WEBHOOKS_MAX_RESPONSE_BYTES,
    pollMs: config.WEBHOOKS_POLL_MS,
    logger,
    onEndpointsChanged: () => webhookEndpoints.invalidate(),
    ...options.webhooks,
  });
  // Once per cluster: the fan-out writes delivery rows (idempotent by endpoint and event, so a
  // redelivered event adds nothing).
  bus.subscribe({
    name: 'webhook-fanout',
    mode: 'work-queue',
    handler: webhookFanout({
      db: database.db,
      endpoints: webhookEndpoints,
      now: () => clock.now(),
      onDeliveries: () => webhookSender.notify(),
    }),
  });
  // Once per cluster: each alert is remediated by one node; a redelivery finds its rows and does nothing.
  // Subscribed before the relay starts; an alert arriving before the service exists is delivered again.
  let remediations: RemediationService | undefined;
  bus.subscribe({
    name: 'remediation',
    mode: 'work-queue',
    types: ['alert.raised'],
    handler: (event) => {
      if (!remediations) throw new Error('remediation is starting; deliver again');
      return remediations.onEvent(event);
    },
  });
  const webhooks = new WebhookService(ctx, webhookBox, {
    allow: webhookAllow,
    ...(options.webhooks?.resolve ? { resolve: options.webhooks.resolve } : {}),
    onEndpointsChanged: () => webhookEndpoints.invalidate(),
    onDeliveryDue: () => webhookSender.notify(),
  });
  const hasher = new IdentifierHasher(secret);
  const lists = new ListService(ctx, hasher, (err) =>
    logger.error({ err }, 'list refresh failed; judging with the copy in memory'),
  );
  const redis = config.REDIS_URL
    ? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    : null;
  const REDIS_DOWN = 'attempt limits fail open; rules reading feature counters send redemptions to review';
  const redisDown = (err: unknown) => dependencies.down('redis', err, REDIS_DOWN);
  redis?.on('error', redisDown);
  redis?.on('ready', () => dependencies.up('redis'));
  // Serve only once Redis answers (or 5 s passed): until then the limits would fail open.
  if (redis) await waitUntilReady(redis, 5_000, options.logger);
  if (redis) dependencies.register('redis', redis.status === 'ready');
  let redisProbe: NodeJS.Timeout | undefined;
  if (redis) {
    // Commands can fail while the connection stays up (timeouts, a Redis out of memory): no 'ready'
    // follows, so a ping tells when it answers again.
    redisProbe = setInterval(() => {
      if (!dependencies.isUp('redis') && redis.status === 'ready')
        redis.ping().then(() => dependencies.up('redis'), redisDown);
    }, 5_000);
    redisProbe.unref();
  }
  const guardOptions = {
    attemptsPerMinute: config.RATE_LIMIT_PER_MINUTE,
    failuresBeforeLock: config.LOCKOUT_AFTER_FAILURES,
    baseLockSeconds: config.LOCKOUT_BASE_SECONDS,
    maxLockSeconds: config.LOCKOUT_MAX_SECONDS,
    keyPrefix: config.REDIS_KEY_PREFIX,
    // Rate limits fail open when Redis is away (logged once per outage); caps never depend on Redis.
    onError: redisDown,
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
  const defenses = new Defenses(hasher, lists, guard, addressGuard, (e) =>
    e.kind === 'refused'
      ? metrics.inc('promoguard_attempt_guard_refusals_total', { key_kind: e.keyKind, reason: e.reason })
      : metrics.inc('promoguard_attempt_guard_locks_total', { key_kind: e.keyKind }),
  );
  const memoryCounters = redis ? null : new MemoryWindowCounters({ maxKeys: config.RISK_COUNTERS_MAX_KEYS });
  const counters = redis
    ? new RedisWindowCounters(redis, `${config.REDIS_KEY_PREFIX}:risk:`)
    : memoryCounters;
  const risk = new RiskEngine(ctx.db, counters as NonNullable<typeof counters>, (err, what) =>
    redis && what.startsWith('risk feature counters') ? redisDown(err) : logger.error({ err }, what),
  );
  const remediationGate = new RemediationGate(
    ctx.db,
    counters as NonNullable<typeof counters>,
    config.OUTBOX_POLL_MS,
    (err) => logger.error({ err }, 'remediation refresh failed; using the copy in memory'),
  );
  const rules = new RuleService(ctx, risk);
  const stepUps = new StepUpChallenges(secret, clock);
  const loyalty = new LoyaltyGuard(ctx.db, hasher, risk, stepUps, (err, what) => logger.error({ err }, what));
  const points = new PointsService(ctx, patterns, loyalty);
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
    webhookSender.start();
    patternRefresh = setInterval(() => {
      patterns.refresh().catch((err: unknown) => logger.error({ err }, 'pattern refresh failed'));
    }, config.OUTBOX_POLL_MS);
    patternRefresh.unref();
    jobs = setInterval(() => {
      points.refundExpired().catch((err: unknown) => logger.error({ err }, 'refund job failed'));
    }, options.jobIntervalMs ?? 60_000);
    jobs.unref();
  }
  const reconciliation = new ReconciliationService(ctx, {
    intervalMinutes: config.RECONCILIATION_INTERVAL_MINUTES,
    logger: options.logger,
  });
  if (options.relay !== false) reconciliation.startSchedule(options.reconciliationTickMs);
  // Detection consumes the relay's events, so it runs where the relay runs (not in one-shot commands).
  const detection =
    config.DETECTION === 'on' && options.relay !== false
      ? new DetectionService(ctx, {
          intervalMs: config.DETECTION_INTERVAL_SECONDS * 1000,
          warmupIntervals: config.DETECTION_WARMUP_INTERVALS,
          targetArl: config.DETECTION_TARGET_ARL,
          maxKeys: config.DETECTION_MAX_KEYS,
          tickMs: options.detectionTickMs ?? 1000,
          snapshotMs: config.DETECTION_SNAPSHOT_SECONDS * 1000,
          actorWindowMs: config.DETECTION_ACTOR_WINDOW_HOURS * 3_600_000,
          rollbacksPerWindow: config.DETECTION_ROLLBACKS_PER_WINDOW,
          smallOrdersPerWindow: config.DETECTION_SMALL_ORDERS_PER_WINDOW,
          smallOrderMinor: config.DETECTION_SMALL_ORDER_MINOR,
          newAccountHours: config.DETECTION_NEW_ACCOUNT_HOURS,
          logger,
        })
      : null;
  // Refused attempts are not events: with NATS every node publishes its own on a core subject (best
  // effort), and the detection node hears all of them; without NATS the node's telemetry is all there is.
  const refusalSubject = `${config.NATS_SUBJECT_PREFIX}-telemetry.refusal`;
  if (bus instanceof JetStreamBus) {
    telemetry.on((a) => {
      const refusal = refusalSignal(a);
      if (refusal) bus.publishTransient(refusalSubject, JSON.stringify(refusal));
    });
  }
  const detectionLeader = detection
    ? new DetectionLeader(ctx, detection, {
        leaseMs: config.DETECTION_LEASE_SECONDS * 1000,
        logger: { info: (obj, msg) => options.logger.info?.(obj, msg), error: logger.error },
        start: () =>
          detection.start(
            bus,
            telemetry,
            bus instanceof JetStreamBus
              ? (handler) =>
                  bus.subscribeTransient(refusalSubject, 'detection', (text) => {
                    const refusal = decodeRefusal(text);
                    if (refusal) handler(refusal);
                  })
              : undefined,
          ),
      })
    : null;
  await detectionLeader?.start();
  let closed = false;
  const campaigns = new CampaignService(ctx, {
    policy: approvalPolicy(config),
    expiresAfterMs: config.APPROVAL_EXPIRES_AFTER_HOURS * 3_600_000,
  });
  remediations = new RemediationService(ctx, campaigns, {
    logger,
    onChange: () => remediationGate.invalidate(),
  });
  if (options.relay !== false) remediations.start(config.REMEDIATION_SWEEP_SECONDS * 1000);
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
    redemptions: new RedemptionService(ctx, patterns, defenses, risk, stepUps, remediationGate, loyalty, {
      sharedLimit: config.IDENTITY_SHARED_LIMIT,
    }),
    points,
    loyalty,
    lists,
    hasher,
    customerTokens: new CustomerTokens(secret, clock),
    risk,
    rules,
    models: new ScoreModelService(ctx, risk),
    reviews: new ReviewService(ctx, {
      slaMinutes: config.REVIEW_SLA_MINUTES,
      lockMinutes: config.REVIEW_LOCK_MINUTES,
    }),
    dependencies,
    approvals: new ApprovalService(ctx, campaigns),
    audit: new AuditService(ctx),
    reconciliation,
    spend: new SpendService(ctx),
    metrics,
    outcomes: new OutcomeService(ctx),
    telemetry,
    webhooks,
    webhookSender,
    remediations,
    remediationGate,
    consoleUsers: new ConsoleUserService(ctx, {
      hasher: new PasswordHasher({ ln: config.CONSOLE_PASSWORD_SCRYPT_LOG_N, r: 8, p: 1 }),
      csrf: new CsrfTokens(secret),
      passwordRules: { minLength: config.CONSOLE_PASSWORD_MIN_LENGTH },
      idleMs: config.CONSOLE_SESSION_IDLE_MINUTES * 60_000,
      maxAgeMs: config.CONSOLE_SESSION_MAX_HOURS * 3_600_000,
      lockoutAfterFailures: config.CONSOLE_LOCKOUT_AFTER_FAILURES,
      lockoutMs: config.CONSOLE_LOCKOUT_MINUTES * 60_000,
    }),
    alerts: new AlertService(ctx),
    detection,
    detectionLeader,
    async close() {
      if (closed) return;
      closed = true;
      // A run in progress closes its report (interrupted) while the database is still open.
      await reconciliation.stop();
      await remediations.stop();
      if (counterSweep) clearInterval(counterSweep);
      if (redisProbe) clearInterval(redisProbe);
      await risk.settled();
      await loyalty.settled();
      if (jobs) clearInterval(jobs);
      if (patternRefresh) clearInterval(patternRefresh);
      await relay.stop();
      // After the relay: no event is handed over any more, and the state saved is the last one.
      await detectionLeader
        ?.stop()
        .catch((err: unknown) => logger.error({ err }, 'detector state not saved'));
      await webhookSender.stop();
      await bus.close();
      await database.close();
      redis?.disconnect();
    },
  };
}

const NATS_DOWN = 'events stay in the outbox and are published when NATS is back; requests are unaffected';

function jetStreamBus(
  config: Config,
  hooks: Pick<ConstructorParameters<typeof JetStreamBus>[0], 'onAvailability' | 'onError'>,
): JetStreamBus {
  return new JetStreamBus({
    servers: config.NATS_URL as string,
    stream: config.NATS_STREAM,
    subjectPrefix: config.NATS_SUBJECT_PREFIX,
    retention: config.NATS_STREAM_RETENTION,
    maxAgeMs: config.NATS_STREAM_MAX_AGE_HOURS * 3_600_000,
    duplicateWindowMs: config.NATS_DUPLICATE_WINDOW_MS,
    publishTimeoutMs: config.NATS_PUBLISH_TIMEOUT_MS,
    ackWaitMs: config.NATS_ACK_WAIT_MS,
    ...hooks,
  });
}

/** The database gauges, read on scrape; the M5 top lists on a slower cadence of their own. */
function databaseGauges(
  database: OpenedDatabase<Database>,
  config: Config,
  clock: Clock,
): () => Promise<DatabaseReading> {
  let topN: {
    at: number;
    readings: Pick<
      MetricReadings,
      'promoguard_code_payment_instruments' | 'promoguard_campaign_payment_instruments'
    >;
  } | null = null;
  return async () => {
    const now = clock.now();
    // The top-N payment-instrument gauges (M5) scan 30 days of redemptions: read on a slower cadence.
    const fresh = topN !== null && now.getTime() - topN.at < config.METRICS_TOP_N_READING_MS;
    const readings = await readMetrics(database.db, {
      campaigns: config.METRICS_CAMPAIGN_LABEL_LIMIT,
      topN: fresh ? 0 : config.METRICS_TOP_N,
      now,
    });
    if (!fresh) {
      topN = {
        at: now.getTime(),
        readings: {
          promoguard_code_payment_instruments: readings.promoguard_code_payment_instruments,
          promoguard_campaign_payment_instruments: readings.promoguard_campaign_payment_instruments,
        },
      };
    }
    return { ...readings, ...topN?.readings };
  };
}
