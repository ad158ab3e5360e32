/** Where the outbox relay publishes committed events, and how a reaction inside Promoguard subscribes. */
import type { DomainEvent, EventType } from '../domain/events.js';

export type EventHandler = (event: DomainEvent) => Promise<void> | void;

/**
 * Who runs a reaction when the app runs on several nodes:
 * - `work-queue`: once per cluster — the nodes share one durable consumer, and each event goes to one
 *   of them (a reaction that writes, sends or alerts, which must not happen once per node);
 * - `broadcast`: on every node — each node has a consumer of its own (a cache or an index in memory
 *   that every node must update).
 * On the in-process bus there is one node, so both run the handler once.
 */
export type DeliveryMode = 'work-queue' | 'broadcast';

export interface Subscription {
  /** Names the consumer: nodes sharing a work queue find it by this name. Letters, digits, - and _. */
  name: string;
  mode: DeliveryMode;
  /** The event types it reacts to; every type when absent. */
  types?: readonly EventType[];
  /**
   * Runs after the event committed, at least once: an event is acknowledged only after the handler
   * returns, and delivered again when it throws (or its node dies first), so a handler whose effect
   * must not repeat deduplicates by event id.
   */
  handler: EventHandler;
}

export interface EventBus {
  /** Resolves once the event is safely handed over (the in-process handlers ran, or JetStream acked). */
  publish(event: DomainEvent): Promise<void>;
  /**
   * Subscribe a reaction. A bare handler is a broadcast subscription to every type (tests and
   * single-process listeners). Returns the unsubscribe.
   */
  subscribe(subscription: Subscription | EventHandler): () => void;
  /**
   * False while the bus cannot take events (NATS is away): the relay then leaves them in the outbox
   * unclaimed, rather than claiming them for a lease it cannot use.
   */
  isAvailable(): boolean;
  close(): Promise<void>;
}

export function asSubscription(
  subscription: Subscription | EventHandler,
  fallbackName: string,
): Subscription {
  return typeof subscription === 'function'
    ? { name: fallbackName, mode: 'broadcast', handler: subscription }
    : subscription;
}

export function wants(subscription: Subscription, event: DomainEvent): boolean {
  return !subscription.types || subscription.types.includes(event.type);
}
