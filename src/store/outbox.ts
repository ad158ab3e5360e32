/**
 * The transactional outbox: a state change and its event row commit together, so an event is never
 * lost between a commit and a publish, and never published for a change that rolled back.
 */
import { type Kysely, sql } from 'kysely';
import type { DomainEvent, EventType } from '../events/types.js';
import { newId } from '../lib/ids.js';
import { type Row, toDate } from './rows.js';
import type { Database } from './schema.js';

export interface NewEvent {
  type: EventType;
  aggregateId: string;
  payload: unknown;
}

/** Append events inside the caller's transaction. */
export async function appendEvents(trx: Kysely<Database>, events: NewEvent[], now: Date): Promise<void> {
  if (events.length === 0) return;
  await trx
    .insertInto('outbox')
    .values(
      events.map((e) => ({
        id: newId('event', now.getTime()),
        type: e.type,
        aggregate_id: e.aggregateId,
        payload: JSON.stringify(e.payload),
        created_at: now,
      })),
    )
    .execute();
}

/**
 * Claim the oldest unpublished events for `leaseMs`. One statement, so two relays (two nodes) never
 * claim the same row at once, and no transaction stays open while events are delivered. A relay
 * that dies holding a claim simply lets the lease run out; the events are delivered again.
 */
export async function claimEvents(
  db: Kysely<Database>,
  limit: number,
  leaseMs: number,
): Promise<DomainEvent[]> {
  const result = await sql<Row>`
    UPDATE outbox SET claimed_until = now() + make_interval(secs => ${leaseMs / 1000})
     WHERE seq IN (
       SELECT seq FROM outbox
        WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
        ORDER BY seq
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
    RETURNING seq, id, type, aggregate_id, payload, created_at`.execute(db);
  return result.rows
    .sort((a, b) => Number(a.seq) - Number(b.seq))
    .map((row) => ({
      id: String(row.id),
      type: row.type as EventType,
      aggregateId: String(row.aggregate_id),
      payload: typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload,
      createdAt: toDate(row.created_at),
    }));
}

export async function markPublished(db: Kysely<Database>, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('outbox').set({ published_at: new Date() }).where('id', 'in', ids).execute();
}
