/**
 * Leases on work one node of many does at a time. Taking and renewing is one statement: the row goes to
 * the caller only when it already holds it or the holder's lease has lapsed, by the database's clock.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

/** Takes or renews `name` for `holder` for `ttlMs`; true when the caller holds it afterwards. */
export async function acquireLease(
  db: Kysely<Database>,
  name: string,
  holder: string,
  ttlMs: number,
): Promise<boolean> {
  const { rows } = await sql<{ holder: string }>`
    INSERT INTO node_leases AS l (name, holder, acquired_at, expires_at)
    VALUES (${name}, ${holder}, statement_timestamp(),
            statement_timestamp() + make_interval(secs => ${ttlMs / 1000}::double precision))
    ON CONFLICT (name) DO UPDATE
       SET holder = excluded.holder,
           acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END,
           expires_at = excluded.expires_at
     WHERE l.holder = excluded.holder OR l.expires_at < excluded.acquired_at
    RETURNING l.holder`.execute(db);
  return rows.length === 1;
}

/** Gives `name` up at once (a clean shutdown), so another node need not wait for it to lapse. */
export async function releaseLease(db: Kysely<Database>, name: string, holder: string): Promise<void> {
  await db.deleteFrom('node_leases').where('name', '=', name).where('holder', '=', holder).execute();
}

export interface LeaseRow {
  holder: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export async function readLease(db: Kysely<Database>, name: string): Promise<LeaseRow | null> {
  const row = await db
    .selectFrom('node_leases')
    .select(['holder', 'acquired_at', 'expires_at'])
    .where('name', '=', name)
    .executeTakeFirst();
  return row
    ? { holder: row.holder, acquiredAt: new Date(row.acquired_at), expiresAt: new Date(row.expires_at) }
    : null;
}
