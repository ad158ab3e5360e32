/**
 * Events as they travel on NATS: versioned JSON, one envelope for every type. The JSON Schema of each
 * type is in `schemas/events/<type>.json` (generated from `src/events/event-schemas.ts`); a consumer
 * reads `version` first and refuses a major version it does not know.
 */
import { type DomainEvent, EVENT_SCHEMA_VERSION, EVENT_TYPES, type EventType } from '../domain/events.js';

export interface WireEvent {
  id: string;
  type: EventType;
  version: number;
  aggregateId: string;
  /** ISO 8601 UTC instant of the commit that wrote it. */
  createdAt: string;
  payload: unknown;
}

export function toWire(event: DomainEvent): WireEvent {
  return {
    id: event.id,
    type: event.type,
    version: EVENT_SCHEMA_VERSION,
    aggregateId: event.aggregateId,
    createdAt: event.createdAt.toISOString(),
    payload: event.payload,
  };
}

export function encodeEvent(event: DomainEvent): string {
  return JSON.stringify(toWire(event));
}

export function decodeEvent(text: string): DomainEvent {
  const wire = JSON.parse(text) as Partial<WireEvent>;
  if (wire.version !== EVENT_SCHEMA_VERSION)
    throw new Error(`event version ${String(wire.version)} is not ${EVENT_SCHEMA_VERSION}`);
  if (
    typeof wire.id !== 'string' ||
    typeof wire.aggregateId !== 'string' ||
    typeof wire.createdAt !== 'string'
  )
    throw new Error('event envelope is incomplete');
  if (!EVENT_TYPES.includes(wire.type as EventType))
    throw new Error(`unknown event type ${String(wire.type)}`);
  return {
    id: wire.id,
    type: wire.type as EventType,
    aggregateId: wire.aggregateId,
    createdAt: new Date(wire.createdAt),
    payload: wire.payload,
  };
}
