/**
 * Webhook endpoints, their deliveries (one per endpoint and event) and each delivery's attempts.
 * Deliveries are claimed with a lease (FOR UPDATE SKIP LOCKED), so two nodes never send the same one
 * at once, and a node that dies holding one lets the lease run out for another to take it over.
 */
import { type Kysely, type Selectable, sql } from 'kysely';
import type {
  Database,
  WebhookAttemptsTable,
  WebhookDeliveriesTable,
  WebhookDeliveryStatus,
  WebhookEndpointsTable,
} from './schema.js';

export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type WebhookAttemptRow = Selectable<WebhookAttemptsTable>;

export async function insertEndpoint(
  db: Kysely<Database>,
  row: Omit<WebhookEndpointRow, 'previous_secret_encrypted' | 'previous_secret_expires_at' | 'deleted_at'>,
): Promise<WebhookEndpointRow> {
  return db.insertInto('webhook_endpoints').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function findEndpoint(db: Kysely<Database>, id: string): Promise<WebhookEndpointRow | null> {
  const row = await db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return row ?? null;
}

/** Newest first; `before` is the id of the last endpoint of the page before. */
export function listEndpoints(
  db: Kysely<Database>,
  limit: number,
  before: string | undefined,
): Promise<WebhookEndpointRow[]> {
  let query = db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('deleted_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(limit);
  if (before !== undefined) query = query.where('id', '<', before);
  return query.execute();
}

/** The endpoints that may receive events: what each node keeps in memory to skip events nobody wants. */
export function listReceivingEndpoints(
  db: Kysely<Database>,
): Promise<Pick<WebhookEndpointRow, 'id' | 'event_types'>[]> {
  return db
    .selectFrom('webhook_endpoints')
    .select(['id', 'event_types'])
    .where('enabled', '=', true)
    .where('deleted_at', 'is', null)
    .execute();
}

export type EndpointChanges = Partial<
  Pick<
    WebhookEndpointRow,
    | 'url'
    | 'description'
    | 'event_types'
    | 'enabled'
    | 'disabled_reason'
    | 'secret_encrypted'
    | 'previous_secret_encrypted'
    | 'previous_secret_expires_at'
    | 'deleted_at'
  >
>;

export async function updateEndpoint(
  db: Kysely<Database>,
  id: string,
  changes: EndpointChanges,
  now: Date,
): Promise<WebhookEndpointRow | null> {
  const row = await db
    .updateTable('webhook_endpoints')
    .set({ ...changes, updated_at: now })
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  return row ?? null;
}

/** Turns an enabled endpoint off by the service's own decision; false when it already was. */
export async function disableEndpoint(
  db: Kysely<Database>,
  id: string,
  reason: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('webhook_endpoints')
    .set({ enabled: false, disabled_reason: reason, updated_at: now })
    .where('id', '=', id)
    .where('enabled', '=', true)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * One delivery of the event to each of `endpointIds` that still receives events of its type. A
 * repeat for the same event (the relay delivers at least once) finds the rows and adds none.
 */
export async function insertDeliveries(
  db: Kysely<Database>,
  event: { id: string; type: string; body: string },
  deliveries: { id: string; endpointId: string }[],
  now: Date,
): Promise<number> {
  if (deliveries.length === 0) return 0;
  const ids = deliveries.map((d) => d.id);
  const endpointIds = deliveries.map((d) => d.endpointId);
  const result = await sql<{ id: string }>`
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, status, next_attempt_at, created_at)
    SELECT v.id, v.endpoint_id, ${event.id}, ${event.type}, ${event.body}, 'pending', ${now}, ${now}
      FROM unnest(${ids}::text[], ${endpointIds}::text[]) AS v (id, endpoint_id)
      JOIN webhook_endpoints e ON e.id = v.endpoint_id
     WHERE e.enabled AND e.deleted_at IS NULL
       AND (${event.type} = ANY (e.event_types) OR '*' = ANY (e.event_types))
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING id`.execute(db);
  return result.rows.length;
}

export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  body: string;
  scheduleStep: number;
  attempts: number;
  url: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

/**
 * Lease up to `limit` due deliveries of enabled endpoints to `token` until `now + leaseMs`. Rows
 * another node is claiming at this instant are skipped, not waited for; rows it holds are not due.
 */
export async function claimDueDeliveries(
  db: Kysely<Database>,
  now: Date,
  limit: number,
  leaseMs: number,
  token: string,
): Promise<ClaimedDelivery[]> {
  const leasedUntil = new Date(now.getTime() + leaseMs);
  const result = await sql<{
    id: string;
    endpoint_id: string;
    event_id: string;
    body: string;
    schedule_step: number;
    attempts: number;
    url: string;
    secret_encrypted: string;
    previous_secret_encrypted: string | null;
    previous_secret_expires_at: Date | string | null;
  }>`
    UPDATE webhook_deliveries d
       SET leased_until = ${leasedUntil}, lease_token = ${token}
      FROM webhook_endpoints e
     WHERE e.id = d.endpoint_id
       AND d.id IN (
         SELECT q.id FROM webhook_deliveries q
           JOIN webhook_endpoints qe ON qe.id = q.endpoint_id
          WHERE q.status = 'pending' AND q.next_attempt_at <= ${now}
            AND (q.leased_until IS NULL OR q.leased_until < ${now})
            AND qe.enabled AND qe.deleted_at IS NULL
          ORDER BY q.next_attempt_at, q.id
          LIMIT ${limit}
          FOR UPDATE OF q SKIP LOCKED)
    RETURNING d.id, d.endpoint_id, d.event_id, d.body, d.schedule_step, d.attempts, e.url,
              e.secret_encrypted, e.previous_secret_encrypted, e.previous_secret_expires_at`.execute(db);
  return result.rows.map((r) => ({
    id: r.id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    body: r.body,
    scheduleStep: r.schedule_step,
    attempts: r.attempts,
    url: r.url,
    secretEncrypted: r.secret_encrypted,
    previousSecretEncrypted: r.previous_secret_encrypted,
    previousSecretExpiresAt:
      r.previous_secret_expires_at === null ? null : new Date(r.previous_secret_expires_at),
  }));
}

export interface AttemptOutcome {
  attemptedAt: Date;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** What the delivery becomes: done, given up, or due again at `nextAttemptAt` (its next step). */
  status: WebhookDeliveryStatus;
  scheduleStep: number;
  nextAttemptAt: Date | null;
}

/**
 * Record an attempt and release the lease. Only the holder of the lease moves the delivery on (a
 * node whose lease ran out must not overwrite what the node that took over decided); the attempt is
 * kept either way, since the request was sent. True when this node still held the lease.
 */
export async function recordAttempt(
  db: Kysely<Database>,
  deliveryId: string,
  token: string,
  outcome: AttemptOutcome,
): Promise<boolean> {
  await db
    .insertInto('webhook_attempts')
    .values({
      delivery_id: deliveryId,
      attempted_at: outcome.attemptedAt,
      status_code: outcome.statusCode,
      error: outcome.error,
      duration_ms: Math.round(outcome.durationMs),
    })
    .execute();
  const result = await db
    .updateTable('webhook_deliveries')
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      status: outcome.status,
      schedule_step: outcome.scheduleStep,
      next_attempt_at: outcome.nextAttemptAt,
      leased_until: null,
      lease_token: null,
      last_status_code: outcome.statusCode,
      last_error: outcome.error,
      last_attempt_at: outcome.attemptedAt,
      ...(outcome.status === 'succeeded' ? { delivered_at: outcome.attemptedAt } : {}),
    }))
    .where('id', '=', deliveryId)
    .where('lease_token', '=', token)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Newest first; `before` is the id of the last delivery of the page before. */
export function listDeliveries(
  db: Kysely<Database>,
  endpointId: string,
  limit: number,
  before: string | undefined,
  status: WebhookDeliveryStatus | undefined,
): Promise<WebhookDeliveryRow[]> {
  let query = db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('endpoint_id', '=', endpointId)
    .orderBy('id', 'desc')
    .limit(limit);
  if (before !== undefined) query = query.where('id', '<', before);
  if (status !== undefined) query = query.where('status', '=', status);
  return query.execute();
}

export async function attemptsOf(
  db: Kysely<Database>,
  deliveryIds: string[],
): Promise<Map<string, WebhookAttemptRow[]>> {
  const byDelivery = new Map<string, WebhookAttemptRow[]>();
  if (deliveryIds.length === 0) return byDelivery;
  const rows = await db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('delivery_id', 'in', deliveryIds)
    .orderBy('id')
    .execute();
  for (const row of rows) {
    const list = byDelivery.get(row.delivery_id) ?? [];
    list.push(row);
    byDelivery.set(row.delivery_id, list);
  }
  return byDelivery;
}

/**
 * Queue a delivery again from the start of the schedule. A lease in force stays, so the node sending
 * it now is not joined by a second one; its token is dropped, so that node's outcome does not undo
 * this request, and the delivery goes out again once the lease ends.
 */
export async function requeueDelivery(
  db: Kysely<Database>,
  endpointId: string,
  deliveryId: string,
  now: Date,
): Promise<WebhookDeliveryRow | null> {
  const row = await db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', schedule_step: 0, next_attempt_at: now, lease_token: null })
    .where('id', '=', deliveryId)
    .where('endpoint_id', '=', endpointId)
    .returningAll()
    .executeTakeFirst();
  return row ?? null;
}
