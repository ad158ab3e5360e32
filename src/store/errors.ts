/**
 * Failures the store reports as values of its own: the services translate them into the API's
 * error codes. The store never speaks HTTP.
 */

/** Inserted codes would pass for a generated batch's codes while failing its check symbol. */
export class CodeShapeConflictError extends Error {
  override name = 'CodeShapeConflictError';
  constructor(readonly codes: string[]) {
    super('a code has the prefix and length of a generated batch');
  }
}

/**
 * The database did not answer: its connection was lost or refused, it is shutting down or starting,
 * or a statement, a query or the wait for a connection ran out of time. The request may succeed when
 * retried; nothing about the request itself was wrong.
 */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** Socket failures: the server is not there, or the path to it broke. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs after which the session is gone: class 08 (connection exception), 57P01 admin shutdown,
 * 57P02 crash shutdown, 57P03 cannot connect now (starting or recovering), 57P05 idle session timeout.
 */
const LOST_SESSION_STATES = new Set(['57P01', '57P02', '57P03', '57P05']);

/**
 * SQLSTATEs of a database that is alive but did not serve this statement in time or at all:
 * 57014 statement timeout (or a cancel), 53300 too many connections, 53000/53200 out of resources.
 */
const BUSY_STATES = new Set(['57014', '53000', '53200', '53300']);

/** node-postgres reports these without a code; their texts are its own and stable. */
const LOST_CONNECTION_MESSAGES = [
  'Connection terminated',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
  'timeout expired',
  'Cannot use a pool after calling end on the pool',
];

/** Every pooled connection stayed busy for the whole connect timeout: the database is alive but slow. */
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';

function fields(err: unknown): { code: unknown; message: unknown } | null {
  if (typeof err !== 'object' || err === null) return null;
  const { code, message } = err as { code?: unknown; message?: unknown };
  return { code, message };
}

function lostByItself(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const f = fields(err);
  if (f === null) return false;
  if (typeof f.code === 'string') {
    if (NETWORK_CODES.has(f.code) || LOST_SESSION_STATES.has(f.code) || /^08[0-9A-Z]{3}$/.test(f.code))
      return true;
  }
  const message = f.message;
  return typeof message === 'string' && LOST_CONNECTION_MESSAGES.some((m) => message.startsWith(m));
}

/**
 * The connection this error came from can no longer be trusted (lost, refused, or stuck behind a query
 * that timed out on the client): it must be discarded, never handed to the next request.
 */
export function isConnectionLost(err: unknown): boolean {
  if (lostByItself(err)) return true;
  // Connecting to a name with several addresses fails with one error per address, gathered.
  if (err instanceof AggregateError) return err.errors.some(lostByItself);
  return lostByItself((err as { cause?: unknown } | null)?.cause);
}

/** The database is unreachable or too slow for now: answered 503 with Retry-After, never 500. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (isConnectionLost(err)) return true;
  const f = fields(err);
  return (typeof f?.code === 'string' && BUSY_STATES.has(f.code)) || f?.message === POOL_WAIT_TIMEOUT;
}

/** Another live process has the PGlite data folder open: two writers would lose each other's writes. */
export class DataFolderInUseError extends Error {
  override name = 'DataFolderInUseError';
  constructor(
    readonly folder: string,
    readonly pid: number,
  ) {
    super(`the data folder ${folder} is in use by process ${pid}; stop it or use DATABASE_URL`);
  }
}
