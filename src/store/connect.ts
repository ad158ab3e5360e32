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
import { PGliteDialect } from './pglite-dialect.js';

export type Backend = 'pglite' | 'postgres';

export interface OpenedDatabase<DB> {
  db: Kysely<DB>;
  backend: Backend;
  /** Closes the pool or the PGlite instance. Safe to call more than once. */
  close(): Promise<void>;
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
    ? openPostgres<DB>(opts.databaseUrl, opts.poolSize)
    : openPGlite<DB>(opts.dataDir, opts.pgliteSharedBuffersMb ?? DEFAULT_PGLITE_SHARED_BUFFERS_MB);
}

async function openPostgres<DB>(
  databaseUrl: string,
  poolSize = DEFAULT_POOL_SIZE,
): Promise<OpenedDatabase<DB>> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    application_name: 'promoguard',
    types: postgresTypes,
  });
  // An idle client whose server connection drops (restart, failover, pg_terminate_backend) emits
  // 'error' on the pool; unhandled, that event would crash the process. The pool already discards
  // the client, so reporting is all that is left to do.
  pool.on('error', (err) => {
    process.stderr.write(`promoguard: idle PostgreSQL connection failed: ${err.message}\n`);
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: preparing(pool) }) });
  const opened = withIdempotentClose(db, 'postgres');
  // Fail at start-up on a wrong URL or credentials, not on the first request.
  await pingOrClose(opened);
  return opened;
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
 */
function preparing(pool: pg.Pool): pg.Pool {
  const wrapped = new WeakSet<pg.PoolClient>();
  const originalConnect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  const connect = async () => {
    const client = await originalConnect();
    if (!wrapped.has(client)) {
      wrapped.add(client);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      const names = new Set<string>();
      (client as unknown as { query: unknown }).query = (
        text: unknown,
        values?: unknown,
        ...rest: unknown[]
      ) => {
        // Parameterless text may hold several statements (migrations), which cannot be prepared.
        if (typeof text === 'string' && Array.isArray(values) && values.length > 0 && rest.length === 0) {
          const name = statementName(text);
          if (names.has(name) || names.size < MAX_PREPARED_PER_CONNECTION) {
            names.add(name);
            return submitPrepared(query, name, text, values);
          }
        }
        return query(text, values, ...rest);
      };
    }
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
): Promise<pg.QueryResult> {
  return new Promise((resolve, reject) => {
    const query = new pg.Query(text, values, (err, result) =>
      // Kysely appends its caller's stack to a failed query's error, so none is captured here.
      err ? reject(err) : resolve(result as unknown as pg.QueryResult),
    );
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
  if (dataDir !== undefined) {
    location = path.resolve(dataDir);
    await createDataDirApart(location);
  }
  const pglite = await PGlite.create({
    ...(location !== undefined ? { dataDir: location } : {}),
    parsers: PGLITE_PARSERS,
    serializers: PGLITE_SERIALIZERS,
    // PGlite touches its whole buffer pool when it starts, and WebAssembly memory never shrinks: the
    // pool is resident for the process's life, so it is kept small; pages outside it are read from the
    // data folder through the OS page cache.
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffersMb}MB`],
  });
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) });
  const opened = withIdempotentClose(db, 'pglite');
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

function withIdempotentClose<DB>(db: Kysely<DB>, backend: Backend): OpenedDatabase<DB> {
  let closing: Promise<void> | undefined;
  return {
    db,
    backend,
    close() {
      closing ??= db.destroy();
      return closing;
    },
  };
}
