import { type Kysely, sql } from 'kysely';
import { type Row, toDate, toDateOrNull, toNumber } from './rows.js';
import type { Database } from './schema.js';

export type ListName = 'block' | 'allow';

export interface ListEntry {
  id: number;
  list: ListName;
  identifierType: string;
  identifierHash: string;
  reason: string;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date | null;
  removedAt: Date | null;
  removedBy: string | null;
}

function entryFromRow(r: Row): ListEntry {
  return {
    id: toNumber(r.id),
    list: r.list as ListName,
    identifierType: String(r.identifier_type),
    identifierHash: String(r.identifier_hash),
    reason: String(r.reason),
    createdBy: String(r.created_by),
    createdAt: toDate(r.created_at),
    expiresAt: toDateOrNull(r.expires_at),
    removedAt: toDateOrNull(r.removed_at),
    removedBy: r.removed_by === null || r.removed_by === undefined ? null : String(r.removed_by),
  };
}

/**
 * Add an entry; an active entry for the same identifier and list is replaced (its reason and expiry
 * updated), so adding twice never leaves two.
 */
export async function upsertEntry(
  db: Kysely<Database>,
  e: {
    list: ListName;
    type: string;
    hash: string;
    reason: string;
    createdBy: string;
    expiresAt: Date | null;
  },
  now: Date,
): Promise<ListEntry> {
  const { rows } = await sql<Row>`
    INSERT INTO list_entries (list, identifier_type, identifier_hash, reason, created_by, created_at, expires_at)
    VALUES (${e.list}, ${e.type}, ${e.hash}, ${e.reason}, ${e.createdBy}, ${now}, ${e.expiresAt})
    ON CONFLICT (identifier_hash, identifier_type, list) WHERE removed_at IS NULL
    DO UPDATE SET reason = EXCLUDED.reason, expires_at = EXCLUDED.expires_at, created_by = EXCLUDED.created_by
    RETURNING *`.execute(db);
  return entryFromRow(rows[0] as Row);
}

export async function removeEntry(
  db: Kysely<Database>,
  id: number,
  by: string,
  now: Date,
): Promise<ListEntry | null> {
  const { rows } = await sql<Row>`
    UPDATE list_entries SET removed_at = ${now}, removed_by = ${by}
     WHERE id = ${id} AND removed_at IS NULL RETURNING *`.execute(db);
  if (rows[0]) return entryFromRow(rows[0]);
  const existing = await sql<Row>`SELECT * FROM list_entries WHERE id = ${id}`.execute(db);
  return existing.rows[0] ? entryFromRow(existing.rows[0]) : null;
}

export async function listEntries(
  db: Kysely<Database>,
  filter: {
    list?: ListName | undefined;
    type?: string | undefined;
    limit: number;
    before?: number | undefined;
  },
): Promise<ListEntry[]> {
  const { rows } = await sql<Row>`
    SELECT * FROM list_entries
     WHERE removed_at IS NULL
       ${filter.list ? sql`AND list = ${filter.list}` : sql``}
       ${filter.type ? sql`AND identifier_type = ${filter.type}` : sql``}
       ${filter.before === undefined ? sql`` : sql`AND id < ${filter.before}`}
     ORDER BY id DESC LIMIT ${filter.limit}`.execute(db);
  return rows.map(entryFromRow);
}

/** Active, unexpired entries that match any of the given (type, hash) pairs. */
export async function matchingEntries(
  db: Kysely<Database>,
  identifiers: { type: string; hash: string }[],
  now: Date,
): Promise<ListEntry[]> {
  if (identifiers.length === 0) return [];
  const { rows } = await sql<Row>`
    SELECT e.* FROM list_entries e
      JOIN jsonb_to_recordset(${JSON.stringify(identifiers)}::jsonb) AS x(type text, hash text)
        ON e.identifier_hash = x.hash AND e.identifier_type = x.type
     WHERE e.removed_at IS NULL AND (e.expires_at IS NULL OR e.expires_at > ${now})`.execute(db);
  return rows.map(entryFromRow);
}

/** Every active entry (expired ones included: expiry is checked when judging), up to `limit`. */
export async function activeEntries(db: Kysely<Database>, limit: number): Promise<ListEntry[]> {
  const { rows } = await sql<Row>`
    SELECT * FROM list_entries WHERE removed_at IS NULL ORDER BY id LIMIT ${limit}`.execute(db);
  return rows.map(entryFromRow);
}
