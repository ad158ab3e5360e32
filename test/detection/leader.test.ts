/**
 * One detection node at a time: the lease is one statement that gives the row to one caller, and among
 * nodes on one database the holder runs the detectors, a clean shutdown hands over at once, and a node
 * that stops renewing (a crash, a freeze) is replaced once its lease lapses and stands down after.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectionLeader } from '../../src/services/detection-leader.js';
import { acquireLease, readLease, releaseLease } from '../../src/store/leases.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import type { Database } from '../../src/store/schema.js';
import { sharedDatabase } from '../risk/helpers.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

async function eventually(done: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await sleep(50);
  return done();
}

for (const backend of backends) {
  describe(`node leases on ${backend.name}`, () => {
    let db: Kysely<Database>;
    let close: () => Promise<void>;

    beforeAll(async () => {
      const opened = await backend.open<Database>();
      db = opened.db;
      close = opened.close;
      await migrateToLatest(db as Kysely<unknown>);
    }, 60_000);
    afterAll(async () => {
      await close?.();
    });

    it('goes to exactly one of many asking at once, is renewed by its holder only, and passes on release', async () => {
      const name = `test-${Math.random().toString(36).slice(2)}`;
      const holders = Array.from({ length: 12 }, (_, i) => `node-${i}`);
      const got = await Promise.all(holders.map((h) => acquireLease(db, name, h, 10_000)));
      expect(got.filter(Boolean)).toHaveLength(1);
      const winner = holders[got.indexOf(true)] as string;
      const first = await readLease(db, name);
      expect(await acquireLease(db, name, winner, 10_000)).toBe(true);
      // Renewal moves the expiry, not the moment it was taken.
      expect((await readLease(db, name))?.acquiredAt).toEqual(first?.acquiredAt);
      const other = holders.find((h) => h !== winner) as string;
      expect(await acquireLease(db, name, other, 10_000)).toBe(false);
      await releaseLease(db, name, other);
      expect((await readLease(db, name))?.holder).toBe(winner);
      await releaseLease(db, name, winner);
      expect(await acquireLease(db, name, other, 10_000)).toBe(true);
    });

    it('passes to another node once it lapses', async () => {
      const name = `test-${Math.random().toString(36).slice(2)}`;
      expect(await acquireLease(db, name, 'a', 300)).toBe(true);
      expect(await acquireLease(db, name, 'b', 300)).toBe(false);
      await sleep(400);
      expect(await acquireLease(db, name, 'b', 300)).toBe(true);
      expect(await acquireLease(db, name, 'a', 300)).toBe(false);
    });
  });
}

const postgres = backends.find((b) => b.name === 'postgres');

describe.skipIf(!postgres)('the detection node among three (PostgreSQL)', () => {
  const nodes: TestApp[] = [];
  let closeDb: () => Promise<void>;
  const leader = (t: TestApp) => t.app.detectionLeader as DetectionLeader;
  const running = (t: TestApp) => t.app.detection?.running === true;

  beforeAll(async () => {
    const database = await sharedDatabase(postgres as NonNullable<typeof postgres>);
    closeDb = database.close;
    for (let i = 0; i < 3; i++) {
      nodes.push(await startTestApp(database.node, { env: { DETECTION_LEASE_SECONDS: '2' } }));
    }
  }, 120_000);
  afterAll(async () => {
    for (const t of nodes) await t.close();
    await closeDb?.();
  });

  it('one runs the detectors; a clean shutdown hands over at once; a frozen holder is replaced and stands down', async () => {
    const [a, b, c] = nodes as [TestApp, TestApp, TestApp];
    expect(nodes.map(running)).toEqual([true, false, false]);
    expect(nodes.map((t) => leader(t).isLeader)).toEqual([true, false, false]);
    const gauge = async (t: TestApp) =>
      (await (t.app.metrics as NonNullable<typeof t.app.metrics>).registry.metrics()).match(
        /^promoguard_detection_leader (\d)/m,
      )?.[1];
    expect(await gauge(a)).toBe('1');

    // A clean shutdown releases the lease: one of the others takes it within a round (a third of it).
    await leader(a).stop();
    expect(running(a)).toBe(false);
    expect(await eventually(() => running(b) || running(c), 1_500)).toBe(true);
    const next = running(b) ? b : c;
    const rest = next === b ? c : b;
    expect(running(rest)).toBe(false);

    // A holder that stops renewing (as if frozen) keeps believing it leads until it next looks; the
    // lease lapses after 2 s and the other node takes over.
    clearInterval((leader(next) as unknown as { timer: NodeJS.Timeout }).timer);
    expect(await eventually(() => running(rest), 5_000)).toBe(true);
    expect(running(next)).toBe(true);
    // Back from its freeze, it finds the lease gone and stops without saving over the new holder's state.
    await leader(next).step();
    expect(running(next)).toBe(false);
    expect(leader(next).isLeader).toBe(false);
    expect(await gauge(next)).toBe('0');
    expect(await gauge(rest)).toBe('1');
  });
});
