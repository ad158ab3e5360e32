/**
 * The event stream on NATS JetStream, on every backend: with NATS_URL set the outbox relay publishes
 * each committed event on `<prefix>.<type>` with its id as `Nats-Msg-Id`, and marks it delivered only
 * after JetStream acknowledged it; a relay that delivers an event twice leaves one message on the
 * stream; the subscriptions inside Promoguard read the stream as a work queue (once across nodes) or
 * a broadcast (on every node), acknowledging after the handler and getting an event again when it fails.
 *
 * Each file uses a stream and subject prefix of its own on the shared server (TEST_NATS_URL).
 */
import { jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import { JetStreamBus } from '../../src/events/jetstream-bus.js';
import type { WireEvent } from '../../src/events/wire.js';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { deleteStream, testNatsUrl, uniqueStream } from '../support/nats.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Every message on a stream, in stream order. */
async function streamMessages(url: string, stream: string): Promise<StoredMsg[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(stream);
    const out: StoredMsg[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m) out.push(m);
    }
    return out;
  } finally {
    await nc.close();
  }
}

async function unpublished(t: TestApp): Promise<number> {
  const r = await sql<{
    n: number;
  }>`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`.execute(t.app.db);
  return r.rows[0]?.n ?? 0;
}

function redeem(t: TestApp, code: string) {
  return t.call('POST', '/v1/redemptions', {
    key: t.keys.checkout,
    body: checkoutBody(code, { customer: { id: unique('cus_') } }),
    headers: { 'idempotency-key': unique('idem-') },
  });
}

describe.runIf(testNatsUrl)('the JetStream event stream', () => {
  const url = testNatsUrl as string;

  for (const backend of backends) {
    describe(backend.name, () => {
      const names = uniqueStream(`js_${backend.name}`);
      let t: TestApp;

      beforeAll(async () => {
        t = await startTestApp(backend, { env: { NATS_URL: url, ...names } });
      });
      afterAll(async () => {
        await t?.close();
        await deleteStream(url, names.NATS_STREAM);
      });

      it('publishes every committed event on <prefix>.<type>, versioned, with its id as Nats-Msg-Id, and marks it delivered after the ack', async () => {
        const { code } = await campaignWithCode(t);
        const res = await redeem(t, code);
        expect(res.statusCode, res.body).toBe(201);
        // The relay publishes only while the bus is connected; a pass may still be waiting for it.
        await vi.waitFor(
          async () => {
            await t.app.relay.drain();
            expect(await unpublished(t)).toBe(0);
          },
          { timeout: 10_000 },
        );

        const outbox = (
          await sql<{ id: string; type: string }>`SELECT id, type FROM outbox ORDER BY seq`.execute(t.app.db)
        ).rows;
        const messages = await streamMessages(url, names.NATS_STREAM);
        expect(messages.map((m) => m.header.get('Nats-Msg-Id'))).toEqual(outbox.map((e) => e.id));
        expect(messages.map((m) => m.subject)).toEqual(
          outbox.map((e) => `${names.NATS_SUBJECT_PREFIX}.${e.type}`),
        );
        const redemption = messages
          .map((m) => m.json<WireEvent>())
          .find((e) => e.type === 'redemption.created');
        expect(redemption).toMatchObject({
          version: 1,
          aggregateId: res.json().id,
          payload: { redemption: { id: res.json().id, status: 'redeemed' } },
        });
        expect(Number.isNaN(Date.parse(redemption?.createdAt ?? ''))).toBe(false);
        expect(t.app.dependencies.state().find((d) => d.dependency === 'nats')).toMatchObject({ up: true });
      });

      it('leaves one message per event on the stream when the relay delivers the same events twice', async () => {
        const { code } = await campaignWithCode(t);
        for (let i = 0; i < 5; i++) expect((await redeem(t, code)).statusCode).toBe(201);
        await t.app.relay.drain();
        const before = await streamMessages(url, names.NATS_STREAM);
        // A relay that crashed after publishing and before marking: every event goes out again.
        await sql`UPDATE outbox SET published_at = NULL, claimed_until = NULL`.execute(t.app.db);
        // Published again, by drain() or by the background relay that may get there first.
        await t.app.relay.drain();
        expect(await unpublished(t)).toBe(0);
        const after = await streamMessages(url, names.NATS_STREAM);
        expect(after.length).toBe(before.length);
        const ids = after.map((m) => m.header.get('Nats-Msg-Id'));
        expect(new Set(ids).size).toBe(ids.length);
      });
    });
  }

  describe('subscriptions across two nodes', () => {
    const names = uniqueStream('js_nodes');
    const buses: JetStreamBus[] = [];
    const errors: string[] = [];

    const node = () => {
      const bus = new JetStreamBus({
        servers: url,
        stream: names.NATS_STREAM,
        subjectPrefix: names.NATS_SUBJECT_PREFIX,
        retention: 'limits',
        maxAgeMs: 3_600_000,
        duplicateWindowMs: 120_000,
        publishTimeoutMs: 2000,
        ackWaitMs: 2000,
        retryMs: 100,
        onError: (_err, what) => errors.push(what),
      });
      buses.push(bus);
      bus.start();
      return bus;
    };

    const event = (i: number, type: DomainEvent['type'] = 'campaign.paused'): DomainEvent => ({
      id: unique(`evt_node${i}_`),
      type,
      aggregateId: `cmp_${i}`,
      payload: { i },
      createdAt: new Date(),
    });

    afterAll(async () => {
      await Promise.all(buses.map((b) => b.close()));
      await deleteStream(url, names.NATS_STREAM);
    });

    it('runs a work-queue reaction once per event across the nodes, and a broadcast one on every node', async () => {
      const a = node();
      const b = node();
      expect(await a.whenReady(5000)).toBe(true);
      expect(await b.whenReady(5000)).toBe(true);
      const queued: Record<string, string[]> = { a: [], b: [] };
      const broadcast: Record<string, string[]> = { a: [], b: [] };
      for (const [label, bus] of [
        ['a', a],
        ['b', b],
      ] as const) {
        bus.subscribe({
          name: 'wq-test',
          mode: 'work-queue',
          types: ['campaign.paused'],
          handler: async (e) => {
            queued[label]?.push(e.id);
            // Slow enough that one node cannot take the whole queue before the other asks.
            await sleep(2);
          },
        });
        bus.subscribe({
          name: 'bc-test',
          mode: 'broadcast',
          types: ['campaign.paused'],
          handler: (e) => {
            broadcast[label]?.push(e.id);
          },
        });
      }
      // The consumers exist before the first event (they start with the events after them).
      await sleep(500);
      const events = Array.from({ length: 200 }, (_, i) => event(i));
      for (const e of events) await a.publish(e);
      // Another type the subscriptions did not ask for.
      await a.publish(event(999, 'campaign.resumed'));
      const ids = events.map((e) => e.id).sort();
      await until('every event handled', () => (queued.a?.length ?? 0) + (queued.b?.length ?? 0) >= 200);
      await until('every broadcast', () => broadcast.a?.length === 200 && broadcast.b?.length === 200);
      await sleep(300);
      expect([...(queued.a ?? []), ...(queued.b ?? [])].sort()).toEqual(ids);
      expect(queued.a?.length).toBeGreaterThan(0);
      expect(queued.b?.length).toBeGreaterThan(0);
      expect([...(broadcast.a ?? [])].sort()).toEqual(ids);
      expect([...(broadcast.b ?? [])].sort()).toEqual(ids);
    });

    it('acknowledges only after the handler succeeds: a handler that fails gets the event again', async () => {
      const a = node();
      expect(await a.whenReady(5000)).toBe(true);
      const attempts = new Map<string, number>();
      const done: string[] = [];
      a.subscribe({
        name: 'wq-retry',
        mode: 'work-queue',
        types: ['campaign.resumed'],
        handler: (e) => {
          const n = (attempts.get(e.id) ?? 0) + 1;
          attempts.set(e.id, n);
          if (n < 3) throw new Error('not yet');
          done.push(e.id);
        },
      });
      await sleep(500);
      const e = event(1, 'campaign.resumed');
      await a.publish(e);
      await until('handled after two failures', () => done.length === 1);
      expect(attempts.get(e.id)).toBe(3);
      expect(errors.filter((w) => w.includes('wq-retry')).length).toBe(2);
      // Acknowledged: it does not come back.
      await sleep(2500);
      expect(attempts.get(e.id)).toBe(3);
    });
  });
});
