import { type Kysely, type Selectable, sql } from 'kysely';
import type { Database, ListEntriesTable, ListName } from './schema.js';

export type { ListName } from './schema.js';

export interface ListEntry {
  id: number;
  list: ListName;
  identifierType: string;
  identifierHash: string;
  /** The IP range of a range entry (`203.0.113.0/24`); null for one identifier. */
  network: string | null;
  reason: string;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date | null;
  removedAt: Date | null;
  removedBy: string | null;
}

function entryFromRow(r: Selectable<ListEntriesTable>): ListEntry {
  return {
    id: r.id,
    list: r.list,
    identifierType: r.identifier_type,
    identifierHash: r.identifier_hash,
    network: r.network,
    reason: r.reason,
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    removedAt: r.removed_at,
    removedBy: r.removed_by,
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
    network?: string | null;
    reason: string;
    createdBy: string;
    expiresAt: Date | null;
  },
  now: Date,
): Promise<ListEntry> {
  const row = await db
    .insertInto('list_entries')
    .values({
      list: e.list,
      identifier_type: e.type,
      identifier_hash: e.hash,
      network: e.network ?? null,
      reason: e.reason,
      created_by: e.createdBy,
      created_at: now,
      expires_at: e.expiresAt,
    })
    .onConflict((oc) =>
      oc
        .columns(['identifier_hash', 'identifier_type', 'list'])
        .where('removed_at', 'is', null)
        .doUpdateSet((eb) => ({
          reason: eb.ref('excluded.reason'),
          expires_at: eb.ref('excluded.expires_at'),
          created_by: eb.ref('excluded.created_by'),
        })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  return entryFromRow(row);
}

export async function removeEntry(
  db: Kysely<Database>,
  id: number,
  by: string,
  now: Date,
): Promise<ListEntry | null> {
  const removed = await db
    .updateTable('list_entries')
    .set({ removed_at: now, removed_by: by })
    .where('id', '=', id)
    .where('removed_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (removed) return entryFromRow(removed);
  const existing = await db.selectFrom('list_entries').selectAll().where('id', '=', id).executeTakeFirst();
  return existing ? entryFromRow(existing) : null;
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
  let query = db
    .selectFrom('list_entries')
    .selectAll()
    .where('removed_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.list) query = query.where('list', '=', filter.list);
  if (filter.type) query = query.where('identifier_type', '=', filter.type);
  if (filter.before !== undefined) query = query.where('id', '<', filter.before);
  return (await query.execute()).map(entryFromRow);
}

/**
 * Active, unexpired entries that match any of the given (type, hash) pairs, or whose range holds
 * `address` (the client address as text, compared in the query and never written).
 */
export async function matchingEntries(
  db: Kysely<Database>,
  identifiers: { type: string; hash: string }[],
  now: Date,
  address: string | null = null,
): Promise<ListEntry[]> {
  if (identifiers.length === 0 && address === null) return [];
  const rows = await db
    .selectFrom('list_entries')
    .selectAll()
    .where((eb) => {
      const matches = [];
      if (identifiers.length > 0) {
        matches.push(
          eb(
            eb.refTuple('identifier_type', 'identifier_hash'),
            'in',
            identifiers.map((i) => eb.tuple(i.type, i.hash)),
          ),
        );
      }
      if (address !== null) matches.push(sql<boolean>`network >>= ${address}::inet`);
      return eb.or(matches);
    })
    .where('removed_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .execute();
  return rows.map(entryFromRow);
}

/** Every active entry (expired ones included: expiry is checked when judging), up to `limit`. */
export async function activeEntries(db: Kysely<Database>, limit: number): Promise<ListEntry[]> {
  const rows = await db
    .selectFrom('list_entries')
    .selectAll()
    .where('removed_at', 'is', null)
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map(entryFromRow);
}
