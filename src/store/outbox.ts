/**
 * The transactional outbox: a state change and its event row commit together, so an event is never
 * lost between a commit and a publish, and never published for a change that rolled back.
 */
import { type Kysely, sql } from 'kysely';
import type { DomainEvent, EventType } from '../domain/events.js';
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
 * One relay pass: mark `published` (events delivered since the last pass) as published, then claim
 * the oldest `limit` unpublished events for `leaseMs` and return them, oldest first. One statement
 * (promoguard_outbox_pass), so two relays never claim the same row and no transaction stays open
 * while events are delivered; a relay that dies holding a claim lets the lease run out and the events
 * are delivered again.
 */
export async function outboxPass(
  db: Kysely<Database>,
  published: readonly string[],
  limit: number,
  leaseMs: number,
): Promise<DomainEvent[]> {
  const result = await sql<Row>`
    SELECT seq, id, type, aggregate_id, payload, created_at
      FROM promoguard_outbox_pass(${[...published]}::text[], ${limit}, ${Math.round(leaseMs)})`.execute(db);
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

/** Claim the oldest unpublished events for `leaseMs` (a pass that marks nothing). */
export function claimEvents(db: Kysely<Database>, limit: number, leaseMs: number): Promise<DomainEvent[]> {
  return outboxPass(db, [], limit, leaseMs);
}

/** Mark delivered events as published (a pass that claims nothing). */
export async function markPublished(db: Kysely<Database>, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await outboxPass(db, ids, 0, 0);
}
