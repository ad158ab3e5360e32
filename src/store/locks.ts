/**
 * The advisory locks Promoguard takes, named once. A lock's key is `hashtextextended(name, 0)`, in
 * TypeScript and in the .sql files alike (test/store/sql-functions.test.ts checks every name the SQL
 * uses is one of these). Each is held to the end of its transaction, so no lock outlives its work.
 */
import { type QueryExecutorProvider, sql } from 'kysely';

export const ADVISORY_LOCKS = {
  /** Two nodes starting together on an empty database create one admin key, not two. */
  bootstrapAdminKey: 'promoguard:bootstrap_admin_key',
  /** New code batches (exclusive) against codes inserted outside a batch (shared, in the shape guard). */
  codeShapes: 'promoguard:code_shapes',
  /** Nodes starting together apply the database functions once. */
  routines: 'promoguard:routines',
  /** Nodes whose reconciliation schedules fire together start one run, not one each. */
  reconciliationStart: 'promoguard:reconciliation_start',
} as const;

export type AdvisoryLock = keyof typeof ADVISORY_LOCKS;

/** Take an exclusive advisory lock until the caller's transaction ends. */
export async function lockUntilCommit(trx: QueryExecutorProvider, lock: AdvisoryLock): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${ADVISORY_LOCKS[lock]}, 0))`.execute(trx);
}
