/**
 * The composition root: opens the store, applies migrations, wires services to the event relay.
 * The HTTP server, the CLI and the tests all start from here.
 */

import type { Kysely } from 'kysely';
import type { Config } from './config.js';
import { InProcessBus } from './events/in-process-bus.js';
import { OutboxRelay, type RelayLogger } from './events/outbox-relay.js';
import type { EventBus } from './events/types.js';
import { ApiKeyService } from './services/api-keys.js';
import { CampaignService } from './services/campaigns.js';
import { CodeService, PatternIndex } from './services/codes.js';
import { type Clock, type ServiceContext, systemClock } from './services/context.js';
import { CustomerTokens } from './services/customer-tokens.js';
import { PointsService } from './services/points.js';
import { RedemptionService } from './services/redemptions.js';
import { loadServerSecret } from './services/secrets.js';
import { type Backend, openDatabase } from './store/connect.js';
import { migrateToLatest } from './store/migrate.js';
import type { Database } from './store/schema.js';

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
  customerTokens: CustomerTokens;
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
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const database =
    options.database ??
    (await openDatabase<Database>({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.DATABASE_URL ? undefined : config.PROMOGUARD_DATA_DIR,
      poolSize: config.DATABASE_POOL_SIZE,
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
  // Other nodes learn of new batches from the event; until then they just read the database.
  bus.subscribe((event) => {
    if (event.type === 'code.batch_generated') {
      const p = event.payload as { prefix: string; random_length: number };
      patterns.add({ prefix: p.prefix, randomLength: p.random_length });
    }
  });
  const clock = options.clock ?? systemClock;
  const secret = await loadServerSecret(database.db, config.PROMOGUARD_SECRET);
  const points = new PointsService(ctx, patterns);
  let jobs: NodeJS.Timeout | undefined;
  if (options.relay !== false) {
    relay.start();
    jobs = setInterval(() => {
      points.refundExpired().catch((err: unknown) => options.logger.error({ err }, 'refund job failed'));
    }, options.jobIntervalMs ?? 60_000);
    jobs.unref();
  }
  let closed = false;
  return {
    db: database.db,
    backend: database.backend,
    config,
    bus,
    relay,
    apiKeys: new ApiKeyService(ctx),
    campaigns: new CampaignService(ctx),
    codes: new CodeService(ctx, patterns),
    redemptions: new RedemptionService(ctx, patterns),
    points,
    customerTokens: new CustomerTokens(secret, clock),
    async close() {
      if (closed) return;
      closed = true;
      if (jobs) clearInterval(jobs);
      await relay.stop();
      await bus.close();
      await database.close();
    },
  };
}
