/**
 * NATS going away under a running server with NATS_URL set: redemptions keep answering (the event is
 * written to the outbox in the redemption's transaction, not sent during the request), the events
 * stay undelivered in the outbox, the outage is logged as it begins and as it ends and kept for the
 * dependency metric, and when NATS is back every event reaches the stream, once.
 *
 * The suite runs its own nats-server on port 21201 (JetStream store in a temporary folder, kept across
 * the restart): it never touches the shared one.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/store/schema.js';
import { backends } from '../support/backends.js';
import { type NatsInstance, natsServerAvailable, startNats, uniqueStream } from '../support/nats.js';
import { call, type OutageApp, publicCode, redeem, required, startOutageApp } from './outage-app.js';

const NATS_PORT = 21201;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const run = required(natsServerAvailable(), 'nats-server');

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.runIf(run)('a NATS outage under a running server', () => {
  for (const backend of backends) {
    describe(backend.name, () => {
      let nats: NatsInstance;
      let t: OutageApp;
      const names = uniqueStream(`outage_${backend.name}`);

      beforeAll(async () => {
        nats = await startNats(NATS_PORT);
        t = await startOutageApp({ NATS_URL: nats.url, ...names }, await backend.open<Database>());
      });
      afterAll(async () => {
        await t?.close();
        await nats?.destroy();
      });

      const unpublished = async () =>
        (
          await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`.execute(
            t.app.db,
          )
        ).rows[0]?.n ?? -1;
      const natsState = () => t.app.dependencies.state().find((d) => d.dependency === 'nats');
      const streamIds = async () => {
        const nc = await connect({ servers: nats.url });
        try {
          const jsm = await jetstreamManager(nc);
          const { state } = await jsm.streams.info(names.NATS_STREAM);
          const ids: string[] = [];
          for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
            const m = await jsm.streams.getMessage(names.NATS_STREAM, { seq });
            if (m) ids.push(m.header.get('Nats-Msg-Id'));
          }
          return ids;
        } finally {
          await nc.close();
        }
      };

      it('keeps redeeming, keeps the events in the outbox while NATS is down, and publishes each once when it is back', async () => {
        const code = await publicCode(t, `NATSDOWN${backend.name.toUpperCase()}`);
        expect((await redeem(t, code)).status).toBe(201);
        await until('the first events delivered', async () => (await unpublished()) === 0);
        expect(natsState()).toMatchObject({ up: true });
        t.clearLog();

        await nats.stop();
        await until('the outage noticed', () => natsState()?.up === false);
        const answers = [];
        for (let i = 0; i < 10; i++) answers.push(await redeem(t, code));
        expect(answers.map((a) => a.status)).toEqual(Array(10).fill(201));
        // The health endpoint and reads answer too: NATS is not on any request's path.
        expect((await call(t.url, t.adminKey, 'GET', '/v1/campaigns')).status).toBe(200);
        await sleep(600);
        expect(await unpublished()).toBe(10);
        expect(t.log.filter((l) => l.msg === 'event delivery failed')).toEqual([]);
        expect(t.log.map((l) => l.msg)).toEqual(['nats is down']);

        await nats.start();
        await until('the outbox drained', async () => (await unpublished()) === 0, 30_000);
        expect(natsState()).toMatchObject({ up: true });
        expect(t.log.map((l) => `${l.level} ${l.msg}`)).toEqual([
          'error nats is down',
          'info nats is back up',
        ]);

        const outbox = (await sql<{ id: string }>`SELECT id FROM outbox ORDER BY seq`.execute(t.app.db)).rows;
        const ids = await streamIds();
        expect(new Set(ids).size).toBe(ids.length);
        expect([...ids].sort()).toEqual(outbox.map((e) => e.id).sort());
      });
    });
  }
});
