/**
 * The transactional outbox: a state change and its event row commit together, so an event is never
 * lost between a commit and a publish, and never published for a change that rolled back.
 */
import { CompiledQuery, type Kysely, type Selectable } from 'kysely';
import type { DomainEvent, EventType } from '../domain/events.js';
import { newId } from '../lib/ids.js';
import { dbFunction } from './functions.js';
import { parseJsonResult } from './rows.js';
import type { Database, OutboxTable } from './schema.js';

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
export const OUTBOX_PASS = dbFunction(
  'promoguard_outbox_pass',
  { published: 'text[]', limit: 'integer', lease_ms: 'integer' },
  { returnsSet: true },
);

export async function outboxPass(
  db: Kysely<Database>,
  published: readonly string[],
  limit: number,
  leaseMs: number,
): Promise<DomainEvent[]> {
  const args = OUTBOX_PASS.values({ published: [...published], limit, lease_ms: Math.round(leaseMs) });
  const result = await db.executeQuery<Selectable<OutboxTable>>(CompiledQuery.raw(OUTBOX_PASS.sql, args));
  return result.rows
    .sort((a, b) => a.seq - b.seq)
    .map((row) => ({
      id: row.id,
      type: row.type as EventType,
      aggregateId: row.aggregate_id,
      payload: parseJsonResult<unknown>(row.payload),
      createdAt: row.created_at,
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
