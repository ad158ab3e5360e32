/** Where the outbox relay publishes committed events, and how a reaction inside Promoguard subscribes. */
import type { DomainEvent } from '../domain/events.js';

export type EventHandler = (event: DomainEvent) => Promise<void> | void;

export interface EventBus {
  publish(event: DomainEvent): Promise<void>;
  subscribe(handler: EventHandler): () => void;
  close(): Promise<void>;
}
