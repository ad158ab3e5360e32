import type { DomainEvent } from '../domain/events.js';
import type { EventBus, EventHandler } from './bus.js';

/**
 * Delivers each event to every subscriber in this process. `publish` resolves only when every
 * handler has finished, and rejects if one failed, so the relay leaves the event unpublished and
 * delivers it again later (handlers deduplicate by event id).
 */
export class InProcessBus implements EventBus {
  private readonly handlers = new Set<EventHandler>();

  async publish(event: DomainEvent): Promise<void> {
    const failures: unknown[] = [];
    for (const handler of [...this.handlers]) {
      try {
        await handler(event);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0)
      throw new AggregateError(failures, `${failures.length} handler(s) failed for ${event.id}`);
  }

  subscribe(handler: EventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
