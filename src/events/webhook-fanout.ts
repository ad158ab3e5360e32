/**
 * Where webhooks join the event flow: each event the relay delivers becomes one stored delivery per
 * endpoint that wants its type. The insert is keyed by (endpoint, event), so the relay's repeats add
 * nothing; if it fails, the handler throws and the relay delivers the event again after its lease.
 * A reaction that must run once per cluster: whichever node's relay delivers the event writes the
 * rows, and every node's sender may then send them.
 */
import type { Kysely } from 'kysely';
import type { DomainEvent } from '../domain/events.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import type { StampedCache } from '../store/stamped-cache.js';
import { insertDeliveries } from '../store/webhooks.js';
import type { EventHandler } from './bus.js';

export interface WebhookFanoutOptions {
  db: Kysely<Database>;
  /** The enabled endpoints and their event types, as this node last read them. */
  endpoints: StampedCache<{ id: string; event_types: string[] }[]>;
  now(): Date;
  /** Called when deliveries were added, to wake the sender. */
  onDeliveries(): void;
}

/** The body every endpoint receives for an event: the Standard Webhooks envelope. */
export function webhookBody(event: DomainEvent): string {
  return JSON.stringify({
    type: event.type,
    timestamp: new Date(event.createdAt).toISOString(),
    data: event.payload,
  });
}

export function webhookFanout(options: WebhookFanoutOptions): EventHandler {
  return async (event) => {
    // The in-memory copy spares a statement per event when no endpoint wants it; the insert checks
    // the endpoints again, so a copy that is out of date never sends to a disabled one.
    const wanted = (await options.endpoints.get()).filter(
      (e) => e.event_types.includes(event.type) || e.event_types.includes('*'),
    );
    if (wanted.length === 0) return;
    const now = options.now();
    const added = await insertDeliveries(
      options.db,
      { id: event.id, type: event.type, body: webhookBody(event) },
      wanted.map((e) => ({ id: newId('webhookDelivery', now.getTime()), endpointId: e.id })),
      now,
    );
    if (added > 0) options.onDeliveries();
  };
}
