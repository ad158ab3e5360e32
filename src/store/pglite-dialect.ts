/**
 * Kysely dialect for PGlite 0.5 (embedded, WASM PostgreSQL).
 *
 * PGlite is a single backend session, so the driver hands out one connection object and serialises
 * access to it: `acquireConnection()` resolves only after the previous holder released it, in FIFO
 * order. Without that, two `db.transaction()` calls would interleave their statements inside one
 * session and PostgreSQL would see them as a single transaction.
 *
 * Consequence for callers: inside `db.transaction(async (trx) => ...)` every statement must go through
 * `trx`. Using `db` there waits for the connection the transaction itself holds, which never frees
 * (on PostgreSQL it would silently run outside the transaction instead).
 */
import type { PGliteInterface, Results } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  IdentifierNode,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
  RawNode,
  type TransactionSettings,
} from 'kysely';

/** The part of PGlite (or a PGliteWorker) the driver uses. */
export type PGliteLike = Pick<PGliteInterface, 'query' | 'exec' | 'close' | 'closed' | 'waitReady'>;

export interface PGliteDialectConfig {
  /** An open instance, or a factory the driver calls once, on first use. */
  pglite: PGliteLike | (() => Promise<PGliteLike>);
  /** Close the instance on `db.destroy()`. Default true; false when the caller owns its lifetime. */
  closeOnDestroy?: boolean;
}

export class PGliteDialect implements Dialect {
  readonly #config: PGliteDialectConfig;

  constructor(config: PGliteDialectConfig) {
    this.#config = config;
  }

  createDriver(): Driver {
    return new PGliteDriver(this.#config);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * FIFO lock with direct hand-off: `unlock()` passes ownership to the oldest waiter without ever
 * becoming free, so a newcomer cannot barge in between and starve queued transactions.
 */
class FifoLock {
  #held = false;
  readonly #waiters: Waiter[] = [];

  lock(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  unlock(): void {
    const next = this.#waiters.shift();
    if (next) next.resolve();
    else this.#held = false;
  }

  rejectWaiters(err: Error): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(err);
  }
}

class PGliteDriver implements Driver {
  readonly #config: PGliteDialectConfig;
  readonly #lock = new FifoLock();
  #pglite: PGliteLike | undefined;
  #destroyed = false;

  constructor(config: PGliteDialectConfig) {
    this.#config = config;
  }

  async init(): Promise<void> {
    const { pglite } = this.#config;
    const instance = typeof pglite === 'function' ? await pglite() : pglite;
    await instance.waitReady;
    this.#pglite = instance;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#destroyed) throw new Error('driver has already been destroyed');
    await this.#lock.lock();
    if (this.#destroyed || !this.#pglite) {
      this.#lock.unlock();
      throw new Error('driver has already been destroyed');
    }
    // A fresh object per lease, so a reference kept past release cannot run statements inside the
    // next holder's transaction.
    return new PGliteConnection(this.#pglite);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // Same statement text as Kysely's PostgresDriver, so both backends accept the same settings.
    let statement = 'start transaction';
    if (settings.isolationLevel) statement += ` isolation level ${settings.isolationLevel}`;
    if (settings.accessMode) statement += ` ${settings.accessMode}`;
    await asPGliteConnection(connection).run(statement);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await asPGliteConnection(connection).run('commit');
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await asPGliteConnection(connection).run('rollback');
  }

  async savepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(
      compileQuery(savepointCommand('savepoint', savepointName), createQueryId()),
    );
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(
      compileQuery(savepointCommand('rollback to', savepointName), createQueryId()),
    );
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(compileQuery(savepointCommand('release', savepointName), createQueryId()));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    // A second release of the same lease would hand the session to a waiter while another holder
    // is using it.
    asPGliteConnection(connection).revoke();
    this.#lock.unlock();
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#lock.rejectWaiters(new Error('driver has already been destroyed'));
    // Like pg's pool.end(), let the current holder finish: closing under an open transaction would
    // fail its remaining statements halfway. Queued work was rejected above, so we are next in line.
    await this.#lock.lock();
    const pglite = this.#pglite;
    this.#pglite = undefined;
    if (pglite && this.#config.closeOnDestroy !== false && !pglite.closed) await pglite.close();
  }
}

function savepointCommand(command: string, savepointName: string): RawNode {
  // IdentifierNode quotes the name, exactly like Kysely's own savepoint parser.
  return RawNode.createWithChildren([
    RawNode.createWithSql(`${command} `),
    IdentifierNode.create(savepointName),
  ]);
}

function asPGliteConnection(connection: DatabaseConnection): PGliteConnection {
  if (!(connection instanceof PGliteConnection)) throw new Error('not a PGlite connection');
  return connection;
}

const ROW_COUNT_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

class PGliteConnection implements DatabaseConnection {
  #pglite: PGliteLike | undefined;

  constructor(pglite: PGliteLike) {
    this.#pglite = pglite;
  }

  revoke(): void {
    if (!this.#pglite) throw new Error('PGlite connection released twice');
    this.#pglite = undefined;
  }

  get #session(): PGliteLike {
    if (!this.#pglite) throw new Error('PGlite connection used after it was released');
    return this.#pglite;
  }

  /** Runs a parameterless control statement (BEGIN/COMMIT/ROLLBACK). */
  async run(statement: string): Promise<void> {
    await this.#session.exec(statement);
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const session = this.#session;
    const parameters = [...compiledQuery.parameters];
    if (parameters.length > 0) {
      return toQueryResult<R>(await session.query<R>(compiledQuery.sql, parameters));
    }
    // node-postgres sends parameterless queries with the simple protocol, which accepts several
    // statements in one string; PGlite's query() always prepares and would reject them. exec() keeps
    // raw multi-statement SQL (migrations, fixtures) working identically on both backends.
    const results = await session.exec(compiledQuery.sql);
    const [only] = results;
    // node-postgres returns an array for multi-statement text, from which Kysely reads no rows and no
    // count; returning the same here stops code from relying on something PostgreSQL won't give it.
    if (results.length !== 1 || !only) return { rows: [] };
    return toQueryResult<R>(only as Results<R>);
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
      throw new Error('chunkSize must be a positive integer');
    }
    // PGlite runs in-process and materialises the whole result in WASM memory anyway, so a
    // server-side cursor would save nothing; we only honour the chunking contract.
    const { rows } = await this.executeQuery<R>(compiledQuery);
    for (let start = 0; start < rows.length; start += chunkSize) {
      yield { rows: rows.slice(start, start + chunkSize) };
    }
  }
}

function toQueryResult<R>(result: Results<R>): QueryResult<R> {
  const { command, affectedRows, rows } = result;
  // Only data-modifying commands carry a count, as with Kysely's PostgresDriver; PGlite also reports
  // 0 for SELECT and DDL, which would otherwise read as "no rows changed".
  if (command !== undefined && ROW_COUNT_COMMANDS.has(command) && typeof affectedRows === 'number') {
    return { rows, numAffectedRows: BigInt(affectedRows) };
  }
  return { rows };
}
