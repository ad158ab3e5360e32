/**
 * The databases every store/HTTP integration suite runs against.
 *
 * PGlite is always present. PostgreSQL joins when TEST_DATABASE_URL points at a server whose role may
 * create databases; every open() gets a database of its own, dropped again on close(), so test files
 * running in parallel workers never see each other's rows.
 *
 * Under CI the PostgreSQL suite is mandatory: a missing TEST_DATABASE_URL fails the import instead of
 * quietly testing only the embedded engine.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type Backend, type OpenedDatabase, openDatabase } from '../../src/store/connect.js';

export interface TestBackend {
  name: Backend;
  open<DB>(): Promise<OpenedDatabase<DB> & { databaseUrl?: string }>;
}

const EXAMPLE_URL = 'postgres://postgres@127.0.0.1:5432/test';
// Small: two vitest workers may each hold several databases open against one server.
const TEST_POOL_SIZE = 10;

const testDatabaseUrl = process.env['TEST_DATABASE_URL'] || undefined;
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

if (!testDatabaseUrl) {
  if (inCi) {
    throw new Error(
      `TEST_DATABASE_URL is not set, but CI requires the PostgreSQL suite. Set it, e.g. TEST_DATABASE_URL=${EXAMPLE_URL}`,
    );
  }
  // Once per worker process even if the module graph is loaded again for another test file.
  const noticeKey = Symbol.for('promoguard.test.postgresSkippedNotice');
  const registry = globalThis as Record<symbol, unknown>;
  if (!registry[noticeKey]) {
    registry[noticeKey] = true;
    process.stderr.write(
      `PostgreSQL suite skipped: TEST_DATABASE_URL is not set (set TEST_DATABASE_URL=${EXAMPLE_URL} to run it); testing PGlite only.\n`,
    );
  }
}

const pglite: TestBackend = {
  name: 'pglite',
  open: <DB>() => openDatabase<DB>({}),
};

function postgres(adminUrl: string): TestBackend {
  return {
    name: 'postgres',
    async open<DB>() {
      const database = `promoguard_test_${randomBytes(8).toString('hex')}`;
      await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`));
      const url = new URL(adminUrl);
      url.pathname = `/${database}`;
      const databaseUrl = url.toString();

      const dropDatabase = () =>
        withAdmin(adminUrl, (admin) =>
          // FORCE: a pool the test forgot to close (or a connection a crashed test left) must not keep
          // the database alive.
          admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`),
        );

      let opened: OpenedDatabase<DB>;
      try {
        opened = await openDatabase<DB>({ databaseUrl, poolSize: TEST_POOL_SIZE });
      } catch (err) {
        await dropDatabase().catch(() => {});
        throw err;
      }

      let closing: Promise<void> | undefined;
      return {
        db: opened.db,
        backend: opened.backend,
        databaseUrl,
        close() {
          closing ??= (async () => {
            try {
              await opened.close();
            } finally {
              await dropDatabase();
            }
          })();
          return closing;
        },
      };
    },
  };
}

async function withAdmin<T>(adminUrl: string, fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'promoguard-test-admin' });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

export const backends: TestBackend[] = testDatabaseUrl ? [pglite, postgres(testDatabaseUrl)] : [pglite];
