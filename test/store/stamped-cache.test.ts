/**
 * The per-node copy of a stamped data set: a change another node commits is in force for every request
 * begun more than `checkMs` after the commit, also on a node that was quiet in between.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenedDatabase } from '../../src/store/connect.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import type { Database } from '../../src/store/schema.js';
import { StampedCache } from '../../src/store/stamped-cache.js';
import { bumpStamp } from '../../src/store/stamps.js';
import { backends } from '../support/backends.js';

const CHECK_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(backends)('StampedCache on $name', (backend) => {
  let opened: OpenedDatabase<Database>;
  let db: Kysely<Database>;
  let version = 0;
  let loads = 0;

  const cache = () =>
    new StampedCache(
      db,
      'rules',
      async () => {
        loads++;
        return version;
      },
      CHECK_MS,
      (err) => {
        throw err;
      },
    );

  const change = async () => {
    version++;
    await bumpStamp(db, 'rules');
  };

  beforeAll(async () => {
    opened = await backend.open<Database>();
    db = opened.db;
    await migrateToLatest(db as Kysely<unknown>);
  });
  afterAll(() => opened.close());

  it('serves a quiet node the change on its first request past the bound', async () => {
    const node = cache();
    expect(await node.get()).toBe(version);
    await change();
    const committed = Date.now();
    await sleep(CHECK_MS + 20);
    expect(Date.now() - committed).toBeGreaterThan(CHECK_MS);
    expect(await node.get()).toBe(version);
  });

  it('checks ahead in the background under steady traffic, and re-loads only when the stamp moved', async () => {
    const node = cache();
    await node.get();
    const before = loads;
    const until = Date.now() + CHECK_MS * 3;
    while (Date.now() < until) {
      expect(await node.get()).toBe(version);
      await sleep(10);
    }
    expect(loads).toBe(before);
    await change();
    const committed = Date.now();
    let seenAfter = Number.POSITIVE_INFINITY;
    while (Date.now() - committed < CHECK_MS * 3) {
      const began = Date.now();
      if ((await node.get()) === version) {
        seenAfter = began - committed;
        break;
      }
      await sleep(10);
    }
    expect(seenAfter).toBeLessThanOrEqual(CHECK_MS);
  });
});
