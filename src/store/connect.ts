/**
 * Opens the database: a PostgreSQL pool when a URL is given, otherwise embedded PGlite (on disk, or
 * in memory without a data folder).
 *
 * Both backends are configured so that the same query returns the same JavaScript values:
 *   int8, numeric      -> number (RangeError beyond 2^53 instead of silently rounding)
 *   timestamp(tz)      -> Date (parsed by node-postgres' parser on both)
 *   date               -> 'YYYY-MM-DD' string (the two defaults disagreed: local vs UTC midnight)
 *   interval           -> node-postgres' PostgresInterval object (PGlite's default is a string)
 *   json/jsonb         -> parsed value; arrays of all of the above -> arrays of the same
 * Parsers are installed per pool / per instance, never through pg's process-wide `types`, so other
 * pg users in the process are unaffected.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, type QueryExecutorProvider, sql } from 'kysely';
import pg from 'pg';
import { type DataFolderLock, lockDataFolder } from './data-folder-lock.js';
import { DatabaseUnavailableError, isConnectionLost } from './errors.js';
import { PGliteDialect } from './pglite-dialect.js';

export type Backend = 'pglite' | 'postgres';

export interface OpenedDatabase<DB> {
  db: Kysely<DB>;
  backend: Backend;
  /** Closes the pool or the PGlite instance. Safe to call more than once. */
  close(): Promise<void>;
  /**
   * Runs `run` on a connection of its own without the statement and query timeouts (migrations, which
   * may rewrite a large table or wait for another node's migration lock), closed afterwards.
   */
  withoutTimeouts?<T>(run: (db: Kysely<DB>) => Promise<T>): Promise<T>;
  /** The PostgreSQL pool's connections now (absent on PGlite, which is one in-process session). */
  poolStats?(): { inUse: number; idle: number; waiting: number };
}

export interface ConnectOptions {
  /** postgres:// URL. When absent, PGlite is used. */
  databaseUrl?: string | undefined;
  /** PGlite data folder, created if missing. Undefined (and no URL) = in-memory PGlite. */
  dataDir?: string | undefined;
  /** Maximum PostgreSQL connections (default 20). Ignored for PGlite, which has exactly one. */
  poolSize?: number;
  /** PGlite's buffer pool (shared_buffers) in MB (default 16). Ignored for PostgreSQL. */
  pgliteSharedBuffersMb?: number;
  /**
   * The timeouts below bound how long a request can wait on PostgreSQL (absent or 0: unbounded). PGlite
   * runs inside the process, one statement at a time: there is no server to lose, and none apply.
   *
   * `statementTimeoutMs`: PostgreSQL's statement_timeout; the server cancels a statement running
   * longer and the connection stays usable.
   */
  statementTimeoutMs?: number;
  /**
   * How long the client waits for the answer to one query. This is what catches a frozen server or a
   * cut network, where the server cannot cancel anything: the connection is then discarded.
   */
  queryTimeoutMs?: number;
  /** Opening a connection, and waiting for a free one when all are in use. */
  connectTimeoutMs?: number;
  /**
   * Told when a query or a connection fails because the database went away (`up` false, with the
   * error), and when a query started after the last such failure succeeds again (`up` true).
   */
  onAvailability?: (up: boolean, err?: unknown) => void;
}

const DEFAULT_POOL_SIZE = 20;
export const DEFAULT_PGLITE_SHARED_BUFFERS_MB = 16;

const OID = {
  INT8: 20,
  NUMERIC: 1700,
  DATE: 1082,
  TIMESTAMP: 1114,
  TIMESTAMPTZ: 1184,
  INTERVAL: 1186,
  INT8_ARRAY: 1016,
  DATE_ARRAY: 1182,
  NUMERIC_ARRAY: 1231,
} as const;

type TextParser = (text: string) => unknown;
type Serializer = (value: unknown) => string;

function parseInt8(text: string): number {
  const value = Number(text);
  // Rounding a count or an amount silently would be worse than failing the query.
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`int8 value ${text} does not fit a JavaScript number exactly`);
  }
  return value;
}

function parseNumeric(text: string): number {
  const value = Number(text);
  if (Number.isFinite(value) && Math.abs(value) > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`numeric value ${text} does not fit a JavaScript number exactly`);
  }
  return value;
}

function parseDate(text: string): string {
  return text;
}

/** Element parsers whose array forms need explicit handling on node-postgres (PGlite derives them). */
const SCALAR_PARSERS: Record<number, TextParser> = {
  [OID.INT8]: parseInt8,
  [OID.NUMERIC]: parseNumeric,
  [OID.DATE]: parseDate,
};

function arrayOf(elementParser: TextParser, arrayOid: number): TextParser {
  return (text) => pgliteTypes.arrayParser(text, elementParser, arrayOid);
}

const POSTGRES_TEXT_PARSERS: Record<number, TextParser> = {
  ...SCALAR_PARSERS,
  [OID.INT8_ARRAY]: arrayOf(parseInt8, OID.INT8_ARRAY),
  [OID.NUMERIC_ARRAY]: arrayOf(parseNumeric, OID.NUMERIC_ARRAY),
  [OID.DATE_ARRAY]: arrayOf(parseDate, OID.DATE_ARRAY),
};

const postgresTypes: pg.CustomTypesConfig = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      const parser = POSTGRES_TEXT_PARSERS[oid];
      if (parser) return parser;
    }
    return pg.types.getTypeParser(oid, format);
  },
};

// PGlite builds array parsers itself, looking the element parser up at parse time, so scalar entries
// are enough here. Timestamps and intervals reuse node-postgres' parsers so edge cases (BC years,
// infinity, microseconds) come out identical on both backends.
const PGLITE_PARSERS: Record<number, TextParser> = {
  ...SCALAR_PARSERS,
  [OID.TIMESTAMP]: pg.types.getTypeParser(OID.TIMESTAMP, 'text'),
  [OID.TIMESTAMPTZ]: pg.types.getTypeParser(OID.TIMESTAMPTZ, 'text'),
  [OID.INTERVAL]: pg.types.getTypeParser(OID.INTERVAL, 'text'),
};

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function localDateText(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new RangeError('Invalid Date passed as a query parameter');
  const year = d.getFullYear();
  // PostgreSQL has no year 0: JS year 0 is 1 BC.
  const yearText = pad(year < 1 ? 1 - year : year, 4);
  return `${yearText}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function bcSuffix(d: Date): string {
  return d.getFullYear() < 1 ? ' BC' : '';
}

function withDefault(oid: number, forDate: (d: Date) => string): Serializer {
  const fallback = pgliteTypes.serializers[oid];
  return (value) => {
    if (value instanceof Date) return forDate(value);
    return fallback ? fallback(value) : String(value);
  };
}

// node-postgres sends a Date as local wall-clock time with an offset; for `timestamp` and `date`
// PostgreSQL drops the offset and keeps the local wall-clock value. PGlite sends toISOString() (UTC),
// which stores a different value whenever the process is not running in UTC. Mirror node-postgres.
const PGLITE_SERIALIZERS: Record<number, Serializer> = {
  [OID.DATE]: withDefault(OID.DATE, (d) => `${localDateText(d)}${bcSuffix(d)}`),
  [OID.TIMESTAMP]: withDefault(
    OID.TIMESTAMP,
    (d) =>
      `${localDateText(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
      `${pad(d.getMilliseconds(), 3)}${bcSuffix(d)}`,
  ),
};

export async function openDatabase<DB>(opts: ConnectOptions): Promise<OpenedDatabase<DB>> {
  return opts.databaseUrl
    ? openPostgres<DB>(opts.databaseUrl, opts)
    : openPGlite<DB>(opts.dataDir, opts.pgliteSharedBuffersMb ?? DEFAULT_PGLITE_SHARED_BUFFERS_MB);
}

function positive(ms: number | undefined): number | undefined {
  return ms !== undefined && ms > 0 ? ms : undefined;
}

function newPool(databaseUrl: string, config: pg.PoolConfig): pg.Pool {
  return new pg.Pool({
    connectionString: databaseUrl,
    application_name: 'promoguard',
    types: postgresTypes,
    // A peer that vanished without a reset (a cut network) is noticed on idle connections too.
    keepAlive: true,
    ...config,
  });
}

async function openPostgres<DB>(databaseUrl: string, opts: ConnectOptions): Promise<OpenedDatabase<DB>> {
  const statementTimeout = positive(opts.statementTimeoutMs);
  const queryTimeout = positive(opts.queryTimeoutMs);
  const connectTimeout = positive(opts.connectTimeoutMs);
  const pool = newPool(databaseUrl, {
    max: opts.poolSize ?? DEFAULT_POOL_SIZE,
    ...(statementTimeout ? { statement_timeout: statementTimeout } : {}),
    ...(queryTimeout ? { query_timeout: queryTimeout } : {}),
    ...(connectTimeout ? { connectionTimeoutMillis: connectTimeout } : {}),
  });
  const availability = availabilityReporter(opts.onAvailability);
  // An idle client whose server connection drops (restart, failover, pg_terminate_backend) emits
  // 'error' on the pool; unhandled, that event would crash the process. The pool already discards
  // the client, and the client's own listener (see `guarded`) has reported it.
  pool.on('error', (err) => {
    if (!opts.onAvailability)
      process.stderr.write(`promoguard: idle PostgreSQL connection failed: ${err.message}\n`);
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: guarded(pool, availability) }) });
  const opened: OpenedDatabase<DB> = {
    ...withIdempotentClose(db, 'postgres'),
    poolStats: () => ({
      inUse: pool.totalCount - pool.idleCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
    }),
    async withoutTimeouts(run) {
      const own = newPool(databaseUrl, {
        max: 1,
        ...(connectTimeout ? { connectionTimeoutMillis: connectTimeout } : {}),
      });
      own.on('error', () => {});
      const unbounded = new Kysely<DB>({
        dialect: new PostgresDialect({ pool: guarded(own, availabilityReporter(undefined)) }),
      });
      try {
        return await run(unbounded);
      } finally {
        await unbounded.destroy();
      }
    },
  };
  // Fail at start-up on a wrong URL or credentials, not on the first request.
  await pingOrClose(opened);
  return opened;
}

interface AvailabilityReporter {
  /** A mark to hand back to `succeeded`. */
  started(): number;
  failed(err: unknown): void;
  succeeded(mark: number): void;
}

/**
 * Turns query outcomes into availability changes. Only a query that started after the last failure
 * proves the database is back: one that was already under way when it went down may still succeed.
 */
function availabilityReporter(
  report: ((up: boolean, err?: unknown) => void) | undefined,
): AvailabilityReporter {
  let failures = 0;
  let failing = false;
  return {
    started: () => failures,
    failed(err) {
      failures++;
      failing = true;
      report?.(false, err);
    },
    succeeded(mark) {
      if (failing && mark === failures) {
        failing = false;
        report?.(true);
      }
    },
  };
}

/** Distinct statements a connection prepares; past this, further texts run unprepared. */
const MAX_PREPARED_PER_CONNECTION = 500;
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `pg_${createHash('sha1').update(text).digest('base64url')}`;
    if (statementNames.size < 10_000) statementNames.set(text, name);
  }
  return name;
}

/**
 * Every statement runs as a named prepared statement: PostgreSQL parses and plans it once per
 * connection instead of on every call (the redemption's context query and its function call are run
 * thousands of times a second with the same text). Our SQL text is static with $n parameters, so the
 * set of texts is bounded; a connection still stops preparing new ones past a limit. Statements
 * without parameters run as simple queries.
 *
 * A connection that failed (lost, refused, or stuck behind a query the client gave up on) is never used
 * again: later statements on it (the transaction's ROLLBACK) fail at once instead of waiting out their
 * own timeout, and releasing it destroys it instead of returning it to the pool.
 */
function guarded(pool: pg.Pool, availability: AvailabilityReporter): pg.Pool {
  const wrapped = new WeakSet<pg.PoolClient>();
  const broken = new WeakMap<pg.PoolClient, Error>();
  const originalConnect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  const breaker = new Breaker();
  pool.on('connect', () => breaker.close());
  const connect = async () => {
    const probe = breaker.admit();
    let client: pg.PoolClient;
    try {
      client = await originalConnect();
    } catch (err) {
      if (probe) breaker.probed();
      if (isConnectionLost(err)) {
        breaker.trip(err);
        availability.failed(err);
      }
      throw err;
    }
    if (!wrapped.has(client)) {
      wrapped.add(client);
      const lost = (err: unknown) => {
        if (!isConnectionLost(err)) return;
        if (!broken.has(client)) broken.set(client, err instanceof Error ? err : new Error(String(err)));
        // A server that closed the connection is alive and is asked again; one that never answered is not.
        if ((err as Error).message === QUERY_READ_TIMEOUT) breaker.trip(err);
        availability.failed(err);
      };
      // A checked-out client has no listener of the pool's: the 'error' of a connection that drops
      // between two statements (a server shutting down mid-transaction) would otherwise end the process.
      client.on('error', lost);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      const names = new Set<string>();
      (client as unknown as { query: unknown }).query = (
        text: unknown,
        values?: unknown,
        ...rest: unknown[]
      ) => {
        const failure = broken.get(client);
        if (failure)
          throw new DatabaseUnavailableError(`the database connection was lost: ${failure.message}`);
        const mark = availability.started();
        const succeeded = () => {
          availability.succeeded(mark);
          breaker.close();
        };
        // Parameterless text may hold several statements (migrations), which cannot be prepared.
        if (typeof text === 'string' && Array.isArray(values) && values.length > 0 && rest.length === 0) {
          const name = statementName(text);
          if (names.has(name) || names.size < MAX_PREPARED_PER_CONNECTION) {
            names.add(name);
            return submitPrepared(query, name, text, values, (err) => (err ? lost(err) : succeeded()));
          }
        }
        const result = query(text, values, ...rest);
        if (result instanceof Promise) {
          return result.then(
            (value) => {
              succeeded();
              return value;
            },
            (err: unknown) => {
              lost(err);
              throw err;
            },
          );
        }
        return result;
      };
    }
    // pg-pool sets `release` anew on every checkout. Kysely releases without an error, so the pool
    // would take a connection back that only the wrapper knows to be broken.
    const release = client.release;
    client.release = (err?: Error | boolean) => {
      if (probe) breaker.probed();
      release(err || broken.get(client));
    };
    return client;
  };
  return new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'connect') return connect;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** pg's own text for a query the client stopped waiting for (query_timeout). */
const QUERY_READ_TIMEOUT = 'Query read timeout';

/**
 * Trips when the database cannot be reached: a connection could not be opened, or a query went
 * unanswered for the whole query timeout. While tripped, one checkout at a time (the probe) tries the
 * database and every other is answered at once: a hung server would otherwise collect a half-open
 * connection per request in its accept queue, to be worked through before it serves anyone again, and
 * each request would wait out the timeouts. Any answer from the server (a new connection, a query's
 * result) closes it.
 */
class Breaker {
  private tripped: Error | null = null;
  private probing = false;

  trip(err: unknown): void {
    this.tripped = err instanceof Error ? err : new Error(String(err));
  }

  close(): void {
    this.tripped = null;
  }

  /** Whether this checkout is the probe; throws when another probe is under way. */
  admit(): boolean {
    if (this.tripped === null) return false;
    if (this.probing) {
      throw new DatabaseUnavailableError(`the database does not answer: ${this.tripped.message}`);
    }
    this.probing = true;
    return true;
  }

  probed(): void {
    this.probing = false;
  }
}

/**
 * Runs `text` as the prepared statement `name`. The Query is built from the text, then named: given a
 * config object instead, pg copies it property descriptor by property descriptor into a dictionary-mode
 * object on every call, measurable on statements run thousands of times a second. A named Query is a
 * prepared statement either way (pg parses it once per connection, then only binds and executes).
 */
function submitPrepared(
  submit: (query: pg.Query) => unknown,
  name: string,
  text: string,
  values: unknown[],
  settled: (err: Error | undefined) => void,
): Promise<pg.QueryResult> {
  return new Promise((resolve, reject) => {
    const query = new pg.Query(text, values, (err, result) => {
      settled(err);
      // Kysely appends its caller's stack to a failed query's error, so none is captured here.
      if (err) reject(err);
      else resolve(result as unknown as pg.QueryResult);
    });
    (query as unknown as { name: string }).name = name;
    submit(query);
  });
}

async function openPGlite<DB>(
  dataDir: string | undefined,
  sharedBuffersMb: number,
): Promise<OpenedDatabase<DB>> {
  if (!Number.isInteger(sharedBuffersMb) || sharedBuffersMb < 1) {
    throw new RangeError(`PGlite shared_buffers must be a whole number of MB >= 1, got ${sharedBuffersMb}`);
  }
  let location: string | undefined;
  let lock: DataFolderLock | undefined;
  if (dataDir !== undefined) {
    location = path.resolve(dataDir);
    await createDataDirApart(location);
    lock = lockDataFolder(location, dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(location !== undefined ? { dataDir: location } : {}),
      parsers: PGLITE_PARSERS,
      serializers: PGLITE_SERIALIZERS,
      // PGlite touches its whole buffer pool when it starts, and WebAssembly memory never shrinks: the
      // pool is resident for the process's life, so it is kept small; pages outside it are read from the
      // data folder through the OS page cache.
      startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffersMb}MB`],
    });
  } catch (err) {
    lock?.release();
    throw err;
  }
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) });
  const opened: OpenedDatabase<DB> = {
    ...withIdempotentClose(db, 'pglite', () => lock?.release()),
    // In-process: a statement cannot outlive the process that runs it, so there is nothing to lift.
    withoutTimeouts: (run) => run(db),
  };
  await pingOrClose(opened);
  return opened;
}

// Run by a short-lived child process: `node -e INITDB_SOURCE <pglite module> <folder>`.
const INITDB_SOURCE =
  'const { PGlite } = require(process.argv[1]);' +
  'PGlite.create({ dataDir: process.argv[2] }).then((db) => db.close());';

/**
 * Creates a missing or empty data folder in a child process. PGlite runs initdb inside its own
 * WebAssembly memory, which grows several times larger than serving needs and is never given back, so
 * the server must not run initdb itself. The child makes the folder beside the target and it is renamed
 * into place only when complete, so a crash mid-way leaves no half-made folder for the next start to
 * trip over. A folder that is neither missing nor empty is left to PGlite.
 */
async function createDataDirApart(location: string): Promise<void> {
  if (await exists(path.join(location, 'PG_VERSION'))) return;
  const entries = await readdir(location).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (entries !== null && entries.length > 0) return;
  await mkdir(path.dirname(location), { recursive: true });
  const staging = `${location}.initdb-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(staging);
    const pgliteModule = createRequire(import.meta.url).resolve('@electric-sql/pglite');
    await promisify(execFile)(process.execPath, ['-e', INITDB_SOURCE, pgliteModule, staging], {
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(
        `PGlite could not create its data folder ${location}: ${err.stderr?.trim() || err.message}`,
      );
    });
    // A failed rmdir (another process's folder is there now) is judged by the rename below.
    if (entries !== null) await rmdir(location).catch(() => {});
    await rename(staging, location).catch(async (err: unknown) => {
      // Another process made the folder first: use theirs.
      if (!(await exists(path.join(location, 'PG_VERSION')))) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/** One round trip: the database answers (readiness probes, start-up). */
export async function ping(db: QueryExecutorProvider): Promise<void> {
  await sql`SELECT 1`.execute(db);
}

async function pingOrClose<DB>(opened: OpenedDatabase<DB>): Promise<void> {
  try {
    await ping(opened.db);
  } catch (err) {
    await opened.close().catch(() => {});
    throw err;
  }
}

function withIdempotentClose<DB>(
  db: Kysely<DB>,
  backend: Backend,
  afterClose: () => void = () => {},
): OpenedDatabase<DB> {
  let closing: Promise<void> | undefined;
  return {
    db,
    backend,
    close() {
      closing ??= db.destroy().finally(afterClose);
      return closing;
    },
  };
}
