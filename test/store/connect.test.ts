import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type ColumnType, CompiledQuery, type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenedDatabase, openDatabase } from '../../src/store/connect.js';
import { PGliteDialect } from '../../src/store/pglite-dialect.js';
import { backends } from '../support/backends.js';

interface SampleTable {
  id: number;
  big: number;
  amount: number;
  at: Date;
  naive: Date;
  day: ColumnType<string, string | Date, string | Date>;
  doc: ColumnType<unknown, string, string>;
  tags: string[];
  bigs: number[];
}

interface CounterTable {
  id: number;
  v: number;
}

interface UniqueTable {
  code: string;
}

interface TestDb {
  sample: SampleTable;
  counter: CounterTable;
  uniq: UniqueTable;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

async function withTimeZone<T>(tz: string, fn: () => Promise<T>): Promise<T> {
  const previous = process.env['TZ'];
  process.env['TZ'] = tz;
  try {
    return await fn();
  } finally {
    if (previous === undefined) delete process.env['TZ'];
    else process.env['TZ'] = previous;
  }
}

describe.each(backends.map((b) => [b.name, b] as const))('store connection on %s', (name, backend) => {
  let opened: OpenedDatabase<TestDb>;
  let db: Kysely<TestDb>;

  beforeAll(async () => {
    opened = await backend.open<TestDb>();
    db = opened.db;
    expect(opened.backend).toBe(name);
    await sql`
      create table sample (
        id int primary key,
        big bigint not null,
        amount numeric(14, 2) not null,
        at timestamptz not null,
        naive timestamp not null,
        day date not null,
        doc jsonb not null,
        tags text[] not null,
        bigs bigint[] not null
      )`.execute(db);
    await sql`create table counter (id int primary key, v int not null)`.execute(db);
    await sql`create table uniq (code text primary key)`.execute(db);
  });

  afterAll(async () => {
    await opened?.close();
  });

  it('maps bigint and numeric to number, timestamps to Date, jsonb to objects, arrays to arrays', async () => {
    const at = new Date('2024-03-01T10:20:30.456Z');
    await db
      .insertInto('sample')
      .values({
        id: 1,
        big: 9_007_199_254_740_991,
        amount: 1234.5,
        at,
        naive: new Date(2024, 2, 1, 10, 20, 30, 456),
        day: '2024-03-01',
        doc: JSON.stringify({ rule: { min: 100 }, list: [1, 'two'] }),
        tags: ['vip', 'with space', 'quote"d', ''],
        bigs: [1, 2, 3],
      })
      .execute();

    const row = await db.selectFrom('sample').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
    expect(row.big).toBe(9_007_199_254_740_991);
    expect(row.amount).toBe(1234.5);
    expect(row.at).toBeInstanceOf(Date);
    expect(row.at.toISOString()).toBe(at.toISOString());
    expect(row.naive).toBeInstanceOf(Date);
    expect(row.naive.getTime()).toBe(new Date(2024, 2, 1, 10, 20, 30, 456).getTime());
    expect(row.day).toBe('2024-03-01');
    expect(row.doc).toEqual({ rule: { min: 100 }, list: [1, 'two'] });
    expect(row.tags).toEqual(['vip', 'with space', 'quote"d', '']);
    expect(row.bigs).toEqual([1, 2, 3]);
  });

  it('returns aggregates and casts as numbers and native values', async () => {
    const { rows } = await sql<Record<string, unknown>>`
      select count(*) as n,
             sum(big) as total,
             avg(amount) as mean,
             '{1.5,NULL,2}'::numeric[] as nums,
             '{2024-01-02}'::date[] as days,
             '{"2024-01-02 03:04:05+00"}'::timestamptz[] as stamps,
             '[1, {"a": null}]'::jsonb as doc_array,
             '1 day 02:03:04'::interval as span
        from sample`.execute(db);
    const row = rows[0]!;
    expect(row['n']).toBe(1);
    expect(row['total']).toBe(9_007_199_254_740_991);
    expect(row['mean']).toBe(1234.5);
    expect(row['nums']).toEqual([1.5, null, 2]);
    expect(row['days']).toEqual(['2024-01-02']);
    expect(row['stamps']).toEqual([new Date('2024-01-02T03:04:05Z')]);
    expect(row['doc_array']).toEqual([1, { a: null }]);
    expect(row['span']).toMatchObject({ days: 1, hours: 2, minutes: 3, seconds: 4 });
  });

  it('refuses an int8 beyond 2^53 instead of rounding it', async () => {
    await expect(sql`select 9007199254740993::int8 as v`.execute(db)).rejects.toThrow(RangeError);
    // The session stays usable after the parser refused a row.
    const { rows } = await sql<{ v: number }>`select 1::int8 as v`.execute(db);
    expect(rows).toEqual([{ v: 1 }]);
  });

  it('keeps the wall-clock time of Date parameters for timestamp and date outside UTC', async () => {
    await withTimeZone('America/New_York', async () => {
      // 23:30 in New York is already the next day in UTC.
      const local = new Date(2024, 0, 15, 23, 30, 0, 0);
      // Guards the test itself: the zone switch must have reached V8.
      expect(local.getTimezoneOffset()).toBe(300);
      await db
        .insertInto('sample')
        .values({
          id: 2,
          big: 0,
          amount: 0,
          at: local,
          naive: local,
          day: local,
          doc: '{}',
          tags: [],
          bigs: [],
        })
        .execute();
      const row = await db
        .selectFrom('sample')
        .select(['at', 'naive', 'day', sql<string>`naive::text`.as('naive_text')])
        .where('id', '=', 2)
        .executeTakeFirstOrThrow();
      expect(row.at.getTime()).toBe(local.getTime());
      expect(row.naive.getTime()).toBe(local.getTime());
      expect(row.naive_text).toBe('2024-01-15 23:30:00');
      expect(row.day).toBe('2024-01-15');
    });
  });

  it('rolls back a transaction whose callback throws', async () => {
    await db.insertInto('counter').values({ id: 100, v: 1 }).execute();
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.updateTable('counter').set({ v: 2 }).where('id', '=', 100).execute();
        await trx.insertInto('counter').values({ id: 101, v: 1 }).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const rows = await db.selectFrom('counter').selectAll().where('id', 'in', [100, 101]).execute();
    expect(rows).toEqual([{ id: 100, v: 1 }]);
  });

  it('rolls back a transaction whose statement fails, and the connection stays usable', async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('counter').values({ id: 102, v: 1 }).execute();
        await sql`select 1 / 0`.execute(trx);
      }),
    ).rejects.toThrow(/division by zero/);
    const rows = await db.selectFrom('counter').selectAll().where('id', '=', 102).execute();
    expect(rows).toEqual([]);
  });

  it('runs 20 concurrent read-then-write transactions without losing an update', async () => {
    await db.insertInto('counter').values({ id: 1, v: 0 }).execute();
    const lockClause = name === 'postgres' ? sql` for update` : sql``;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction().execute(async (trx) => {
          // On PGlite the read is deliberately unlocked: only the driver's serialisation keeps the
          // transactions from interleaving. PostgreSQL runs them in parallel, so it needs the row lock.
          const { rows } = await sql<{ v: number }>`select v from counter where id = 1${lockClause}`.execute(
            trx,
          );
          await yieldToEventLoop();
          await trx
            .updateTable('counter')
            .set({ v: rows[0]!.v + 1 })
            .where('id', '=', 1)
            .execute();
        }),
      ),
    );
    const row = await db.selectFrom('counter').select('v').where('id', '=', 1).executeTakeFirstOrThrow();
    expect(row.v).toBe(20);
  });

  it('reports numAffectedRows for UPDATE of 0 and of N rows, with and without parameters', async () => {
    await db
      .insertInto('counter')
      .values([
        { id: 200, v: 0 },
        { id: 201, v: 0 },
        { id: 202, v: 0 },
      ])
      .execute();

    const none = await sql`update counter set v = v + 1 where id = ${-1}`.execute(db);
    expect(none.numAffectedRows).toBe(0n);
    const noneRaw = await sql`update counter set v = v + 1 where id < 0`.execute(db);
    expect(noneRaw.numAffectedRows).toBe(0n);

    const three = await sql`update counter set v = v + 1 where id between ${200} and ${202}`.execute(db);
    expect(three.numAffectedRows).toBe(3n);
    const threeRaw = await sql`update counter set v = v + 1 where id between 200 and 202`.execute(db);
    expect(threeRaw.numAffectedRows).toBe(3n);

    const updated = await db.updateTable('counter').set({ v: 9 }).where('id', '>=', 200).executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(3n);
    const deleted = await db.deleteFrom('counter').where('id', '=', 202).executeTakeFirst();
    expect(deleted.numDeletedRows).toBe(1n);
    const inserted = await sql`insert into counter (id, v) values (${203}, 0), (${204}, 0)`.execute(db);
    expect(inserted.numAffectedRows).toBe(2n);

    // SELECT carries no count, as with Kysely's own PostgreSQL driver.
    const selected = await sql`select 1`.execute(db);
    expect(selected.numAffectedRows).toBeUndefined();
  });

  it('applies the isolation level and access mode of a transaction', async () => {
    const level = await db
      .transaction()
      .setIsolationLevel('serializable')
      .execute(async (trx) => {
        const { rows } = await sql<{
          level: string;
        }>`select current_setting('transaction_isolation') as level`.execute(trx);
        return rows[0]!.level;
      });
    expect(level).toBe('serializable');

    await expect(
      db
        .transaction()
        .setAccessMode('read only')
        .execute((trx) => trx.insertInto('counter').values({ id: 300, v: 0 }).execute()),
    ).rejects.toThrow(/read-only transaction/);
  });

  it('supports savepoints in controlled transactions', async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto('counter').values({ id: 400, v: 0 }).execute();
    const sp = await trx.savepoint('before second').execute();
    await sp.insertInto('counter').values({ id: 401, v: 0 }).execute();
    await sp.rollbackToSavepoint('before second').execute();
    await trx.commit().execute();
    const rows = await db.selectFrom('counter').select('id').where('id', 'in', [400, 401]).execute();
    expect(rows).toEqual([{ id: 400 }]);
  });

  it('exposes the SQLSTATE and constraint of database errors', async () => {
    await db.insertInto('uniq').values({ code: 'A' }).execute();
    const err = await db
      .insertInto('uniq')
      .values({ code: 'A' })
      .execute()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: '23505', constraint: 'uniq_pkey', table: 'uniq' });
  });

  it('runs parameterless raw SQL holding several statements', async () => {
    await sql`insert into uniq values ('m1'); insert into uniq values ('m2')`.execute(db);
    const rows = await db
      .selectFrom('uniq')
      .select('code')
      .where('code', 'like', 'm%')
      .orderBy('code')
      .execute();
    expect(rows).toEqual([{ code: 'm1' }, { code: 'm2' }]);
  });

  it('can be closed twice', async () => {
    const other = await backend.open<TestDb>();
    await sql`select 1`.execute(other.db);
    await other.close();
    await other.close();
    await expect(sql`select 1`.execute(other.db)).rejects.toThrow();
  });
});

// Registered only where the PostgreSQL suite runs (always under CI; see backends.ts).
const postgresBackend = backends.find((b) => b.name === 'postgres');
if (postgresBackend) {
  describe('PostgreSQL driver', () => {
    let opened: OpenedDatabase<TestDb>;

    beforeAll(async () => {
      opened = await postgresBackend.open<TestDb>();
    });

    afterAll(async () => {
      await opened.close();
    });

    it('runs a statement with parameters as a prepared statement, parsed once per connection', async () => {
      const text = 'select $1::int + 1 as v';
      const prepared = await opened.db.transaction().execute(async (trx) => {
        for (const n of [1, 2]) {
          const { rows } = await trx.executeQuery<{ v: number }>(CompiledQuery.raw(text, [n]));
          expect(rows).toEqual([{ v: n + 1 }]);
        }
        const { rows } = await sql<{
          name: string;
        }>`select name from pg_prepared_statements where statement = ${text}`.execute(trx);
        return rows;
      });
      expect(prepared).toHaveLength(1);
      expect(prepared[0]?.name).toMatch(/^pg_/);
    });
  });
}

describe('PGlite driver', () => {
  let opened: OpenedDatabase<TestDb>;
  let db: Kysely<TestDb>;

  beforeAll(async () => {
    opened = await openDatabase<TestDb>({});
    db = opened.db;
    await sql`create table counter (id int primary key, v int not null)`.execute(db);
  });

  afterAll(async () => {
    await opened?.close();
  });

  it('is an in-memory PGlite without a URL or data folder', () => {
    expect(opened.backend).toBe('pglite');
  });

  it('makes statements outside a transaction wait until it has finished', async () => {
    await db.insertInto('counter').values({ id: 1, v: 0 }).execute();
    const events: string[] = [];
    let releaseTransaction!: () => void;
    const gate = new Promise<void>((resolve) => {
      releaseTransaction = resolve;
    });
    let transactionStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      transactionStarted = resolve;
    });

    const transaction = db.transaction().execute(async (trx) => {
      await trx.updateTable('counter').set({ v: 1 }).where('id', '=', 1).execute();
      transactionStarted();
      await gate;
      events.push('commit');
    });
    await started;
    const outside = db
      .selectFrom('counter')
      .select('v')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
      .then((row) => {
        events.push(`read ${row.v}`);
      });
    for (let i = 0; i < 5; i++) await yieldToEventLoop();
    expect(events).toEqual([]);
    releaseTransaction();
    await Promise.all([transaction, outside]);
    // The outside read saw the committed value, never the transaction's uncommitted state.
    expect(events).toEqual(['commit', 'read 1']);
  });

  it('streams results in chunks', async () => {
    await sql`insert into counter (id, v) select g, g from generate_series(1000, 1004) g`.execute(db);
    const chunks: number[][] = [];
    const query = db.selectFrom('counter').select('id').where('id', '>=', 1000).orderBy('id');
    let current: number[] = [];
    for await (const row of query.stream(2)) {
      current.push(row.id);
      if (current.length === 2) {
        chunks.push(current);
        current = [];
      }
    }
    chunks.push(current);
    expect(chunks).toEqual([[1000, 1001], [1002, 1003], [1004]]);
    // The stream released the connection.
    expect(await db.selectFrom('counter').select('v').where('id', '=', 1000).executeTakeFirst()).toEqual({
      v: 1000,
    });
  });

  it('on close, fails queued statements but lets the current holder finish first', async () => {
    const local = await openDatabase<TestDb>({});
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding!: () => void;
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const holder = local.db.connection().execute(async (conn) => {
      holding();
      await gate;
      const { rows } = await sql<{ ok: number }>`select 1 as ok`.execute(conn);
      return rows;
    });
    await held;
    const queued = sql`select 1`.execute(local.db);
    let isClosed = false;
    const closed = local.close().then(() => {
      isClosed = true;
    });
    await expect(queued).rejects.toThrow(/destroyed/);
    for (let i = 0; i < 5; i++) await yieldToEventLoop();
    expect(isClosed).toBe(false);
    release();
    expect(await holder).toEqual([{ ok: 1 }]);
    await closed;
    expect(isClosed).toBe(true);
  });

  it('refuses a connection lease that was already released', async () => {
    const driver = new PGliteDialect({ pglite: await PGlite.create() }).createDriver();
    await driver.init();
    const lease = await driver.acquireConnection();
    await driver.releaseConnection(lease);
    await expect(lease.executeQuery(CompiledQuery.raw('select 1'))).rejects.toThrow(/after it was released/);
    await expect(driver.releaseConnection(lease)).rejects.toThrow(/released twice/);
    // The lock was released exactly once: the next lease is granted and works.
    const next = await driver.acquireConnection();
    expect((await next.executeQuery(CompiledQuery.raw('select 1 as one'))).rows).toEqual([{ one: 1 }]);
    await driver.releaseConnection(next);
    await driver.destroy();
  });

  it('creates a missing data folder and keeps the data on disk', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'promoguard-pglite-'));
    const dataDir = path.join(root, 'nested', 'data');
    try {
      const first = await openDatabase<TestDb>({ dataDir });
      await sql`create table counter (id int primary key, v int not null)`.execute(first.db);
      await first.db.insertInto('counter').values({ id: 7, v: 42 }).execute();
      await first.close();

      const second = await openDatabase<TestDb>({ dataDir });
      try {
        const row = await second.db.selectFrom('counter').select('v').where('id', '=', 7).executeTakeFirst();
        expect(row).toEqual({ v: 42 });
      } finally {
        await second.close();
      }
      // initdb ran beside the folder and was renamed into place: nothing of it is left behind.
      expect(await readdir(path.join(root, 'nested'))).toEqual(['data']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('creates the database in an empty folder it is given, with the buffer pool asked for', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'promoguard-pglite-'));
    const dataDir = path.join(root, 'data');
    await mkdir(dataDir);
    try {
      const opened = await openDatabase({ dataDir, pgliteSharedBuffersMb: 24 });
      try {
        const { rows } = await sql<{ shared_buffers: string }>`show shared_buffers`.execute(opened.db);
        expect(rows).toEqual([{ shared_buffers: '24MB' }]);
      } finally {
        await opened.close();
      }
      expect(await readdir(root)).toEqual(['data']);
      expect(await readdir(dataDir)).toContain('PG_VERSION');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('uses a 16 MB buffer pool by default and refuses a pool that is not a whole number of MB', async () => {
    const opened = await openDatabase({});
    try {
      const { rows } = await sql<{ shared_buffers: string }>`show shared_buffers`.execute(opened.db);
      expect(rows).toEqual([{ shared_buffers: '16MB' }]);
    } finally {
      await opened.close();
    }
    await expect(openDatabase({ pgliteSharedBuffersMb: 0 })).rejects.toThrow(/whole number of MB/);
    await expect(openDatabase({ pgliteSharedBuffersMb: 1.5 })).rejects.toThrow(/whole number of MB/);
  });

  it('names the folder when its database cannot be created, and leaves nothing behind', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'promoguard-pglite-'));
    // A file where the folder's parent should be: neither the folder nor its staging copy can exist.
    await writeFile(path.join(root, 'blocker'), 'not a folder');
    const dataDir = path.join(root, 'blocker', 'data');
    try {
      await expect(openDatabase({ dataDir })).rejects.toThrow(/blocker/);
      expect(await readdir(root)).toEqual(['blocker']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
