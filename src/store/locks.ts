/**
 * The advisory locks Promoguard takes, named once. Each is held to the end of its transaction
 * (`pg_advisory_xact_lock`), so no lock outlives the work it orders.
 */
import { type QueryExecutorProvider, sql } from 'kysely';

export const ADVISORY_LOCKS = {
  /** Two nodes starting together on an empty database create one admin key, not two. */
  bootstrapAdminKey: 7301,
  /** New code batches (exclusive) against codes inserted outside a batch (shared, in the shape guard). */
  codeShapes: 7302,
  /** Nodes starting together apply the database functions once. */
  routines: 7303,
} as const;

export type AdvisoryLock = keyof typeof ADVISORY_LOCKS;

/** Take an exclusive advisory lock until the caller's transaction ends. */
export async function lockUntilCommit(trx: QueryExecutorProvider, lock: AdvisoryLock): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCKS[lock]})`.execute(trx);
}
