import type { DomainEvent } from '../domain/events.js';
import { asSubscription, type EventBus, type EventHandler, type Subscription, wants } from './bus.js';

/**
 * Delivers each event to every subscriber in this process (one node: a work queue and a broadcast
 * both run the handler once). `publish` resolves only when every handler has finished, and rejects if
 * one failed, so the relay leaves the event unpublished and delivers it again later (handlers
 * deduplicate by event id).
 */
export class InProcessBus implements EventBus {
  private readonly subscriptions = new Set<Subscription>();

  async publish(event: DomainEvent): Promise<void> {
    const failures: unknown[] = [];
    for (const subscription of [...this.subscriptions]) {
      if (!wants(subscription, event)) continue;
      try {
        await subscription.handler(event);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0)
      throw new AggregateError(failures, `${failures.length} handler(s) failed for ${event.id}`);
  }

  subscribe(subscription: Subscription | EventHandler): () => void {
    const s = asSubscription(subscription, 'in-process');
    this.subscriptions.add(s);
    return () => this.subscriptions.delete(s);
  }

  isAvailable(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.subscriptions.clear();
  }
}
