/**
 * Redis going away under a running server: the limits and feature counters fail open (redemptions go
 * on, caps hold in the database), and the outage is logged as it begins and as it ends — not once per
 * request, which under load buries the log — with the dependency's state kept for the metric.
 *
 * The suite runs its own Redis on port 26379: it never touches the shared one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/connect.js';
import type { Database } from '../../src/store/schema.js';
import { type RedisInstance, redisServerAvailable, startRedis } from '../support/redis-instance.js';
import { type OutageApp, publicCode, redeem, required, startOutageApp } from './outage-app.js';

const REDIS_PORT = 26379;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const run = required(redisServerAvailable(), 'redis-server');

describe.runIf(run)('a Redis outage under a running server', () => {
  let redis: RedisInstance;
  let t: OutageApp;

  beforeAll(async () => {
    redis = await startRedis(REDIS_PORT);
    t = await startOutageApp(
      { REDIS_URL: redis.url, RISK_DEFAULT_PACK: 'on' },
      await openDatabase<Database>({}),
    );
  });
  afterAll(async () => {
    await t?.close();
    await redis?.destroy();
  });

  it('keeps redeeming, logs the outage once as it begins and once as it ends, and reports it for the metric', async () => {
    const code = await publicCode(t, 'REDISDOWN');
    expect((await redeem(t, code)).status).toBe(201);
    const redisState = () => t.app.dependencies.state().find((d) => d.dependency === 'redis');
    t.clearLog();

    await redis.stop();
    const answers = [];
    for (let round = 0; round < 20; round++) {
      answers.push(...(await Promise.all(Array.from({ length: 16 }, () => redeem(t, code)))));
    }
    // Attempt limits fail open; the redemption itself lives in the database.
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([201]));
    expect(t.log.map((l) => l.msg)).toEqual(['redis is down']);
    expect(redisState()).toMatchObject({ up: false });
    expect(redisState()?.failures).toBeGreaterThan(0);

    await redis.start();
    const deadline = Date.now() + 20_000;
    while (!redisState()?.up && Date.now() < deadline) await sleep(50);
    expect(redisState()?.up).toBe(true);
    expect((await redeem(t, code)).status).toBe(201);
    expect(t.log.map((l) => `${l.level} ${l.msg}`)).toEqual(['error redis is down', 'info redis is back up']);
  });
});
