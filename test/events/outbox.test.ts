/**
 * The transactional outbox and its relay, on every backend: events reach subscribers only after
 * their transaction commits, oldest first, each with its own id; a rolled-back change leaves none;
 * events survive a crash and are delivered by the next process; a failed delivery is retried after
 * its lease; and two relays on one PostgreSQL share the work without delivering an event twice.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { DomainEvent } from '../../src/domain/events.js';
import { AppError } from '../../src/errors.js';
import { InProcessBus } from '../../src/events/in-process-bus.js';
import { OutboxRelay } from '../../src/events/outbox-relay.js';
import type { CampaignInput } from '../../src/services/campaigns.js';
import { type OpenedDatabase, openDatabase } from '../../src/store/connect.js';
import { appendEvents, claimEvents } from '../../src/store/outbox.js';
import type { Database } from '../../src/store/schema.js';
import { silentLogger, unique } from '../support/app.js';
import { backends, type TestBackend } from '../support/backends.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function campaignInput(overrides: Partial<CampaignInput> = {}): CampaignInput {
  return {
    name: unique('outbox '),
    currency: 'USD',
    discount: { type: 'fixed_amount', amountMinor: 500 },
    status: 'active',
    startsAt: new Date('2020-01-01T00:00:00Z'),
    ...overrides,
  };
}

interface OutboxRow {
  seq: number;
  id: string;
  type: string;
  aggregate_id: string;
  published_at: Date | null;
  claimed_until: Date | null;
}

async function outboxRows(db: Kysely<Database>): Promise<OutboxRow[]> {
  const result = await sql<OutboxRow>`
    SELECT seq, id, type, aggregate_id, published_at, claimed_until FROM outbox ORDER BY seq`.execute(db);
  return result.rows;
}

/** Records what a bus delivered, in delivery order. */
function recorder(bus: InProcessBus) {
  const delivered: DomainEvent[] = [];
  const unsubscribe = bus.subscribe((event) => {
    delivered.push(event);
  });
  return {
    delivered,
    unsubscribe,
    ids: () => delivered.map((e) => e.id),
    countsById() {
      const counts = new Map<string, number>();
      for (const e of delivered) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
      return counts;
    },
  };
}

/** A logger that keeps what the relay reports. */
function captureLogger() {
  const lines: { obj: object; msg: string }[] = [];
  return { lines, error: (obj: object, msg: string) => lines.push({ obj, msg }) };
}

/** Insert `n` events in one transaction, as a service would; returns their ids in commit order. */
async function appendMany(db: Kysely<Database>, n: number, tag: string): Promise<string[]> {
  await db.transaction().execute((trx) =>
    appendEvents(
      trx,
      Array.from({ length: n }, (_, i) => ({
        type: 'campaign.updated' as const,
        aggregateId: `${tag}_${i}`,
        payload: { tag, i },
      })),
      new Date(),
    ),
  );
  const rows = await sql<{ id: string }>`
    SELECT id FROM outbox WHERE aggregate_id LIKE ${`${tag}\\_%`} ORDER BY seq`.execute(db);
  return rows.rows.map((r) => r.id);
}

/** Mark everything earlier tests left behind as published, so each test sees only its own events. */
async function settleOutbox(db: Kysely<Database>): Promise<void> {
  await sql`UPDATE outbox SET published_at = now() WHERE published_at IS NULL`.execute(db);
}

/** A second, independent connection to the same database (PostgreSQL), or the same one (PGlite). */
async function secondConnection(
  opened: OpenedDatabase<Database> & { databaseUrl?: string },
): Promise<{ db: Kysely<Database>; close(): Promise<void> }> {
  if (!opened.databaseUrl) return { db: opened.db, close: async () => {} };
  const other = await openDatabase<Database>({ databaseUrl: opened.databaseUrl, poolSize: 4 });
  return other;
}

describe.each(backends.map((b) => [b.name, b] as const))('outbox on %s', (_name, backend) => {
  let opened: OpenedDatabase<Database> & { databaseUrl?: string };
  let app: App;

  beforeAll(async () => {
    opened = await backend.open<Database>();
    // The app's own relay stays off: each test starts the relays it observes.
    app = await createApp({
      config: loadConfig({ LOG_LEVEL: 'silent', OUTBOX_POLL_MS: '50', APPROVALS: 'off' }),
      logger: silentLogger,
      database: opened,
      relay: false,
    });
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(async () => {
    await settleOutbox(app.db);
  });

  it('delivers committed changes to subscribers after commit, each once, with unique ids, oldest first', async () => {
    const before = (await outboxRows(app.db)).length;
    const rec = recorder(app.bus as InProcessBus);
    // What a subscriber sees when it reads the database as an event arrives.
    const visibleOnDelivery = new Map<string, boolean>();
    const unsubscribe = app.bus.subscribe(async (event) => {
      if (event.type === 'campaign.created') {
        const row = await app.db
          .selectFrom('campaigns')
          .select('id')
          .where('id', '=', event.aggregateId)
          .executeTakeFirst();
        visibleOnDelivery.set(event.aggregateId, row !== undefined);
      }
    });
    app.relay.start();
    try {
      const { campaign: a } = await app.campaigns.create(campaignInput(), 'test');
      const { campaign: b } = await app.campaigns.create(campaignInput(), 'test');
      await app.campaigns.changeStatus(a.id, 'paused', 'test', 'stock check');
      await app.campaigns.changeStatus(a.id, 'active', 'test', null);
      const code = await app.codes.createCode(b.id, { code: unique('OBX') }, 'test');
      await app.codes.generate(b.id, { count: 3, prefix: unique('G').slice(0, 8) }, 'test', {
        atomic: true,
      });
      const redeemed = await app.redemptions.redeem(
        {
          code: code.code,
          customer: { id: 'cus_outbox' },
          cart: { currency: 'USD', subtotalMinor: 10_000, shippingMinor: 0 },
        },
        unique('idem-'),
      );
      expect(redeemed.ok).toBe(true);
      if (!redeemed.ok) return;
      await app.redemptions.rollback(redeemed.redemption.id, 'cancelled');

      const expectedTypes = [
        'campaign.created',
        'campaign.created',
        'campaign.paused',
        'campaign.resumed',
        'code.created',
        'code.batch_generated',
        'redemption.created',
        'redemption.rolled_back',
      ];
      // afterCommit wakes the relay; nothing else drives it here but its own poll.
      await vi.waitFor(() => expect(rec.delivered).toHaveLength(expectedTypes.length), { timeout: 10_000 });

      const rows = (await outboxRows(app.db)).slice(before);
      expect(rows.map((r) => r.type)).toEqual(expectedTypes);
      // Oldest first: delivery order is commit (outbox sequence) order.
      expect(rec.ids()).toEqual(rows.map((r) => r.id));
      expect(rec.delivered.map((e) => e.type)).toEqual(expectedTypes);
      expect(new Set(rec.ids()).size).toBe(expectedTypes.length);
      for (const id of rec.ids()) expect(id).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
      // The relay marks rows published after the bus returns: the subscriber can see the last event first.
      await vi.waitFor(
        async () => {
          const now = (await outboxRows(app.db)).slice(before);
          expect(now.every((r) => r.published_at !== null)).toBe(true);
        },
        { timeout: 10_000 },
      );
      // Every subscriber saw the committed change when its event arrived.
      expect(Object.fromEntries(visibleOnDelivery)).toEqual({ [a.id]: true, [b.id]: true });
      expect(rec.delivered[0]).toMatchObject({ type: 'campaign.created', aggregateId: a.id });
      expect(rec.delivered[0]?.payload).toMatchObject({ campaign: { id: a.id }, actor: 'test' });
      expect(rec.delivered[2]?.payload).toMatchObject({
        from: 'active',
        to: 'paused',
        reason: 'stock check',
      });
      expect(rec.delivered[0]?.createdAt).toBeInstanceOf(Date);

      // Draining again delivers nothing more: each event went out once.
      await app.relay.stop();
      expect(await app.relay.drain()).toBe(0);
      expect(rec.delivered).toHaveLength(expectedTypes.length);
    } finally {
      await app.relay.stop();
      unsubscribe();
      rec.unsubscribe();
    }
  });

  it('does not deliver an event while its transaction is still open', async () => {
    const bus = new InProcessBus();
    const rec = recorder(bus);
    const relay = new OutboxRelay(app.db, bus, { pollMs: 1_000, logger: silentLogger });
    const tag = unique('open');
    let pending: Promise<number> | undefined;
    await app.db.transaction().execute(async (trx) => {
      await appendEvents(trx, [{ type: 'campaign.updated', aggregateId: tag, payload: {} }], new Date());
      // PostgreSQL: the drain runs and cannot see the row. PGlite: it waits for the one session.
      pending = relay.drain();
      await Promise.race([pending, sleep(200)]);
      expect(rec.delivered).toHaveLength(0);
    });
    await pending;
    await relay.drain();
    expect(rec.delivered.map((e) => e.aggregateId)).toEqual([tag]);
  });

  it('leaves no event when the transaction rolls back, and none for a refusal', async () => {
    const bus = new InProcessBus();
    const rec = recorder(bus);
    const relay = new OutboxRelay(app.db, bus, { pollMs: 1_000, logger: silentLogger });
    const before = (await outboxRows(app.db)).length;

    // A transaction that appended an event and then failed.
    const tag = unique('rolledback');
    await expect(
      app.db.transaction().execute(async (trx) => {
        await appendEvents(trx, [{ type: 'campaign.updated', aggregateId: tag, payload: {} }], new Date());
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');

    // An edit whose status change is refused after its campaign.updated event was written.
    const { campaign: draft } = await app.campaigns.create(campaignInput({ status: 'draft' }), 'test');
    await expect(
      app.campaigns.update(draft.id, { name: 'renamed', status: 'paused' }, 'test'),
    ).rejects.toMatchObject({ code: 'invalid_status_transition' });
    expect((await app.campaigns.get(draft.id)).name).toBe(draft.name);

    // An import with one taken code: nothing is added, no code.imported event.
    const taken = unique('TAKEN');
    await app.codes.createCode(draft.id, { code: taken }, 'test');
    const fresh = unique('FRESH');
    await expect(
      app.codes.importCodes(draft.id, [{ code: fresh }, { code: taken }], 'test'),
    ).rejects.toBeInstanceOf(AppError);
    expect(await app.db.selectFrom('codes').select('id').where('normalized', '=', fresh).execute()).toEqual(
      [],
    );

    // Two redemptions racing for a cap of one: the loser's event is undone with it.
    const { campaign: capped } = await app.campaigns.create(campaignInput({ redemptionCap: 1 }), 'test');
    const shared = unique('CAP');
    await app.codes.createCode(capped.id, { code: shared }, 'test');
    const outcomes = await Promise.all(
      ['cus_a', 'cus_b', 'cus_c'].map((customer) =>
        app.redemptions.redeem(
          {
            code: shared,
            customer: { id: customer },
            cart: { currency: 'USD', subtotalMinor: 10_000, shippingMinor: 0 },
          },
          unique('race-'),
        ),
      ),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);

    await relay.drain();
    const rows = (await outboxRows(app.db)).slice(before);
    expect(rows.map((r) => r.type)).toEqual([
      'campaign.created',
      'code.created',
      'campaign.created',
      'code.created',
      'redemption.created',
    ]);
    expect(rows.some((r) => r.aggregate_id === tag)).toBe(false);
    expect(rec.delivered.map((e) => e.type)).toEqual(rows.map((r) => r.type));
    expect(rec.delivered.filter((e) => e.type === 'campaign.updated')).toEqual([]);
  });

  it('keeps an event whose handler throws unpublished, and delivers it again after the lease', async () => {
    const logger = captureLogger();
    const bus = new InProcessBus();
    const rec = recorder(bus);
    let failuresLeft = 1;
    let failing = '';
    bus.subscribe((event) => {
      if (event.id === failing && failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error('consumer down');
      }
    });
    const [first] = await appendMany(app.db, 1, unique('lease'));
    if (!first) throw new Error('event not written');
    failing = first;

    // A long lease: after the failure nothing may take the event again until the lease runs out.
    const patient = new OutboxRelay(app.db, bus, { pollMs: 1_000, leaseMs: 60_000, logger });
    expect(await patient.drain()).toBe(0);
    let failed = (await outboxRows(app.db)).find((r) => r.id === first);
    expect(failed?.published_at).toBeNull();
    expect(failed?.claimed_until).toBeInstanceOf(Date);
    expect(logger.lines).toEqual([
      {
        msg: 'event delivery failed',
        obj: expect.objectContaining({ eventId: first, type: 'campaign.updated' }),
      },
    ]);
    expect(await patient.drain()).toBe(0);
    expect(rec.ids()).toEqual([first]);

    // The lease runs out (moved into the past rather than waited for): the next pass delivers it.
    await sql`UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE id = ${first}`.execute(
      app.db,
    );
    expect(await patient.drain()).toBe(1);
    expect(rec.ids()).toEqual([first, first]);
    failed = (await outboxRows(app.db)).find((r) => r.id === first);
    expect(failed?.published_at).toBeInstanceOf(Date);

    // The same with a real, short lease and a running relay.
    const [third] = await appendMany(app.db, 1, unique('lease'));
    if (!third) throw new Error('event not written');
    failing = third;
    failuresLeft = 1;
    const quick = new OutboxRelay(app.db, bus, { pollMs: 20, leaseMs: 300, logger });
    quick.start();
    try {
      await vi.waitFor(
        async () => {
          expect(rec.ids().filter((id) => id === third)).toHaveLength(2);
          const row = (await outboxRows(app.db)).find((r) => r.id === third);
          expect(row?.published_at).toBeInstanceOf(Date);
        },
        { timeout: 10_000, interval: 50 },
      );
    } finally {
      await quick.stop();
    }
    expect(logger.lines.filter((l) => l.msg === 'event delivery failed')).toHaveLength(2);
  });

  it('marks what a background pass delivered with its next statement, and at the latest on stop', async () => {
    const bus = new InProcessBus();
    const rec = recorder(bus);
    const published = async (ids: string[]) =>
      (await outboxRows(app.db)).filter((r) => ids.includes(r.id)).map((r) => r.published_at !== null);
    // No poll is due for a minute, well within the five-minute lease.
    const relay = new OutboxRelay(app.db, bus, { pollMs: 60_000, leaseMs: 300_000, logger: silentLogger });
    const first = await appendMany(app.db, 3, unique('defer'));
    relay.start();
    try {
      await vi.waitFor(() => expect(rec.ids()).toEqual(expect.arrayContaining(first)));
      // The statement that claimed them leaves marking them to the next one.
      expect(await published(first)).toEqual([false, false, false]);
      // The next commit's pass marks them (and delivers what that commit wrote).
      const second = await appendMany(app.db, 2, unique('defer'));
      relay.notify();
      await vi.waitFor(async () => expect(await published(first)).toEqual([true, true, true]));
      await vi.waitFor(() => expect(rec.ids()).toEqual(expect.arrayContaining(second)));
      await relay.stop();
      // Stopping marks what the last pass delivered.
      expect(await published(second)).toEqual([true, true]);
      expect(rec.ids().filter((id) => first.includes(id) || second.includes(id))).toEqual([
        ...first,
        ...second,
      ]);
    } finally {
      await relay.stop();
    }
    // Nothing goes out twice: a new relay finds nothing to deliver.
    expect(
      await new OutboxRelay(app.db, new InProcessBus(), { pollMs: 1_000, logger: silentLogger }).drain(),
    ).toBe(0);
  });

  it('marks at once when its poll could come after the lease ran out', async () => {
    const bus = new InProcessBus();
    const rec = recorder(bus);
    const ids = await appendMany(app.db, 2, unique('slow-poll'));
    // A minute between polls against the 30-second default lease: waiting for the next pass could let
    // another relay claim and deliver the events again.
    const relay = new OutboxRelay(app.db, bus, { pollMs: 60_000, logger: silentLogger });
    relay.start();
    try {
      await vi.waitFor(async () => {
        expect(rec.ids()).toEqual(expect.arrayContaining(ids));
        const rows = (await outboxRows(app.db)).filter((r) => ids.includes(r.id));
        expect(rows.map((r) => r.published_at !== null)).toEqual([true, true]);
      });
    } finally {
      await relay.stop();
    }
  });

  it('delivers every event exactly once when two relays drain the same outbox at once (long lease)', async () => {
    const other = await secondConnection(opened);
    try {
      const ids = await appendMany(app.db, 400, unique('pair'));
      const busA = new InProcessBus();
      const busB = new InProcessBus();
      const recA = recorder(busA);
      const recB = recorder(busB);
      // A handler that yields, so the two relays' passes interleave.
      for (const bus of [busA, busB]) bus.subscribe(() => yieldToEventLoop());
      const options = { pollMs: 1_000, leaseMs: 60_000, batchSize: 20, logger: silentLogger };
      const relayA = new OutboxRelay(app.db, busA, options);
      const relayB = new OutboxRelay(other.db, busB, options);

      const [a, b] = await Promise.all([relayA.drain(), relayB.drain()]);
      expect(a + b).toBe(ids.length);
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(0);
      const counts = new Map<string, number>();
      for (const id of [...recA.ids(), ...recB.ids()]) counts.set(id, (counts.get(id) ?? 0) + 1);
      expect([...counts.keys()].sort()).toEqual([...ids].sort());
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      // Each relay still delivers its share oldest first.
      for (const rec of [recA, recB]) {
        const mine = rec.ids();
        expect(mine).toEqual(ids.filter((id) => mine.includes(id)));
      }
      const rows = await outboxRows(app.db);
      expect(rows.filter((r) => ids.includes(r.id) && r.published_at === null)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('never lets two concurrent claims take the same event, nor more than they asked for', async () => {
    const other = await secondConnection(opened);
    try {
      const ids = await appendMany(app.db, 120, unique('claim'));
      const claims = await Promise.all(
        Array.from({ length: 10 }, (_, i) => claimEvents(i % 2 === 0 ? app.db : other.db, 10, 60_000)),
      );
      for (const claim of claims) expect(claim.length).toBeLessThanOrEqual(10);
      const claimed = claims.flat().map((e) => e.id);
      expect(new Set(claimed).size).toBe(claimed.length);
      // What is left is still claimable, once; together the claims cover every event exactly once.
      const rest = (await claimEvents(other.db, 200, 60_000)).map((e) => e.id);
      expect(rest.length).toBeGreaterThanOrEqual(20);
      expect([...claimed, ...rest].sort()).toEqual([...ids].sort());
      expect(await claimEvents(app.db, 200, 60_000)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('delivers again, from another relay, the events of a relay that stalled past its lease', async () => {
    const other = await secondConnection(opened);
    try {
      const ids = await appendMany(app.db, 3, unique('stall'));
      const stalledBus = new InProcessBus();
      const stalledRec = recorder(stalledBus);
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      stalledBus.subscribe(() => gate);
      const stalled = new OutboxRelay(app.db, stalledBus, {
        pollMs: 1_000,
        leaseMs: 200,
        logger: silentLogger,
      });
      const stalledPass = stalled.drain();
      await vi.waitFor(() => expect(stalledRec.delivered).toHaveLength(1));

      const bus = new InProcessBus();
      const rec = recorder(bus);
      const rescuer = new OutboxRelay(other.db, bus, {
        pollMs: 1_000,
        leaseMs: 60_000,
        logger: silentLogger,
      });
      await vi.waitFor(
        async () => {
          expect(await rescuer.drain()).toBeGreaterThan(0);
        },
        { timeout: 10_000, interval: 50 },
      );
      expect(rec.ids()).toEqual(ids);
      release();
      await stalledPass;
      // At least once: the stalled relay finished its own pass too, so each event went out twice.
      expect(stalledRec.ids()).toEqual(ids);
      const rows = await outboxRows(app.db);
      expect(rows.filter((r) => ids.includes(r.id)).every((r) => r.published_at !== null)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('tells every node of a new batch, so each refuses a mistyped code of it without a database read', async () => {
    // Two nodes on one database, each with its relay. The relays compete for events, so an event on
    // the in-process bus reaches one node only; yet every node keeps its own index of batch shapes.
    const nodeB = await createApp({
      config: loadConfig({
        LOG_LEVEL: 'silent',
        OUTBOX_POLL_MS: '50',
        DATABASE_POOL_SIZE: '4',
        ...(opened.databaseUrl ? { DATABASE_URL: opened.databaseUrl } : {}),
      }),
      logger: silentLogger,
      // PGlite is one process: the second node shares its instance (and does not close it).
      ...(opened.databaseUrl
        ? {}
        : { database: { db: opened.db, backend: opened.backend, close: async () => {} } }),
    });
    app.relay.start();
    try {
      const { campaign } = await app.campaigns.create(campaignInput(), 'test');
      const prefix = unique('N').slice(0, 8);
      const batch = await app.codes.generate(campaign.id, { count: 3, prefix }, 'test', { atomic: true });
      await vi.waitFor(
        async () => {
          const row = await app.db
            .selectFrom('outbox')
            .select('published_at')
            .where('aggregate_id', '=', batch.batchId)
            .executeTakeFirst();
          expect(row?.published_at).toBeInstanceOf(Date);
        },
        { timeout: 10_000, interval: 25 },
      );
      const mistyped = `${prefix}${'2'.repeat(12)}3`;
      expect(app.codes.patterns.mayExist(mistyped)).toBe(false);
      await vi.waitFor(() => expect(nodeB.codes.patterns.mayExist(mistyped)).toBe(false), {
        timeout: 3_000,
        interval: 25,
      });
    } finally {
      await app.relay.stop();
      await nodeB.close();
    }
  });

  it('keeps undelivered events across a crash and delivers them when the next process starts', async () => {
    const { env, dispose } = await durableDatabase(backend);
    try {
      const config = loadConfig({
        LOG_LEVEL: 'silent',
        OUTBOX_POLL_MS: '50',
        DATABASE_POOL_SIZE: '4',
        APPROVALS: 'off',
        ...env,
      });
      // The first process commits changes but never gets to deliver them.
      const first = await createApp({ config, logger: silentLogger, relay: false });
      const firstRec = recorder(first.bus as InProcessBus);
      let committed: string[];
      try {
        const { campaign } = await first.campaigns.create(campaignInput(), 'test');
        await first.campaigns.changeStatus(campaign.id, 'paused', 'test', null);
        await first.codes.createCode(campaign.id, { code: unique('CRASH') }, 'test');
        await first.codes.generate(campaign.id, { count: 5, prefix: 'CR' }, 'test', { atomic: true });
        // A relay that died mid-delivery: it claimed the oldest event (short lease), never marked it.
        const claimed = await claimEvents(first.db, 1, 300);
        expect(claimed.map((e) => e.type)).toEqual(['campaign.created']);
        const rows = await outboxRows(first.db);
        committed = rows.map((r) => r.id);
        expect(rows.map((r) => r.type)).toEqual([
          'campaign.created',
          'campaign.paused',
          'code.created',
          'code.batch_generated',
        ]);
        expect(rows.every((r) => r.published_at === null)).toBe(true);
        expect(firstRec.delivered).toEqual([]);
      } finally {
        await first.close();
      }

      // A new process on the same database.
      const second = await createApp({ config, logger: silentLogger, relay: false });
      try {
        const rec = recorder(second.bus as InProcessBus);
        second.relay.start();
        await vi.waitFor(() => expect(rec.delivered).toHaveLength(committed.length), {
          timeout: 10_000,
          interval: 25,
        });
        expect([...rec.ids()].sort()).toEqual([...committed].sort());
        expect([...rec.countsById().values()].every((n) => n === 1)).toBe(true);
        // The unclaimed ones go out oldest first.
        expect(rec.ids().filter((id) => id !== committed[0])).toEqual(committed.slice(1));
        await second.relay.stop();
        expect((await outboxRows(second.db)).every((r) => r.published_at !== null)).toBe(true);
        // The new process learned the batch's pattern from the database, not from the event.
        expect(second.codes.patterns.mayExist(`CR${'2'.repeat(12)}3`)).toBe(false);
      } finally {
        await second.close();
      }
    } finally {
      await dispose();
    }
  });
});

/** A database two processes can open one after the other: a PGlite folder, or a PostgreSQL database. */
async function durableDatabase(
  backend: TestBackend,
): Promise<{ env: Record<string, string>; dispose(): Promise<void> }> {
  if (backend.name === 'pglite') {
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-outbox-'));
    return {
      env: { PROMOGUARD_DATA_DIR: dir },
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  }
  // The backend creates (and later drops) the database; each app opens its own pool on its URL.
  const holder = await backend.open<Database>();
  if (!holder.databaseUrl) throw new Error('PostgreSQL backend gave no URL');
  return { env: { DATABASE_URL: holder.databaseUrl }, dispose: () => holder.close() };
}
