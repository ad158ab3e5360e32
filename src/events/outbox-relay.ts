/**
 * Moves committed events from the outbox to the bus, at least once, oldest first.
 * It drains right after this process commits (`notify`) and polls for the rest: events left by a
 * crash, by another node, or by a delivery that failed and whose claim has run out.
 */
import type { Kysely } from 'kysely';
import { claimEvents, markPublished } from '../store/outbox.js';
import type { Database } from '../store/schema.js';
import type { EventBus } from './types.js';

export interface RelayLogger {
  error(obj: object, msg: string): void;
}

export interface OutboxRelayOptions {
  pollMs: number;
  batchSize?: number;
  /** How long a claimed event stays with this relay before another may deliver it again. */
  leaseMs?: number;
  logger: RelayLogger;
}

export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly bus: EventBus,
    private readonly options: OutboxRelayOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.notify(), this.options.pollMs);
    this.timer.unref();
    this.notify();
  }

  /** Ask for a drain soon; calls made while one runs coalesce into one more pass. */
  notify(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drainLoop().finally(() => {
      this.draining = undefined;
    });
  }

  /**
   * Deliver everything claimable now. Waits first for a background pass under way: the events it has
   * claimed are not claimable by this call, so returning without waiting could leave them undelivered.
   */
  async drain(): Promise<number> {
    await this.draining;
    return this.pass();
  }

  private async pass(): Promise<number> {
    let delivered = 0;
    for (;;) {
      const events = await claimEvents(
        this.db,
        this.options.batchSize ?? 100,
        this.options.leaseMs ?? 30_000,
      );
      if (events.length === 0) return delivered;
      const published: string[] = [];
      for (const event of events) {
        try {
          await this.bus.publish(event);
          published.push(event.id);
        } catch (err) {
          // Left claimed: the lease is the back-off before the next attempt.
          this.options.logger.error({ err, eventId: event.id, type: event.type }, 'event delivery failed');
        }
      }
      await markPublished(this.db, published);
      delivered += published.length;
      if (published.length < events.length) return delivered;
    }
  }

  private async drainLoop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        if (!this.stopped) this.options.logger.error({ err }, 'outbox relay pass failed');
      }
    } while (this.again && !this.stopped);
  }

  /** Stop polling and wait for the pass under way, so no delivery is cut off mid-way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.draining;
  }
}
