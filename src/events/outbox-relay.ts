/**
 * Moves committed events from the outbox to the bus, at least once, oldest first.
 * It drains right after this process commits (`notify`) and polls for the rest: events left by a
 * crash, by another node, or by a delivery that failed and whose claim has run out.
 */
import type { Kysely } from 'kysely';
import type { DomainEvent } from '../domain/events.js';
import { markPublished, outboxPass } from '../store/outbox.js';
import type { Database } from '../store/schema.js';
import type { EventBus } from './bus.js';

export interface RelayLogger {
  error(obj: object, msg: string): void;
}

export interface OutboxRelayOptions {
  pollMs: number;
  /**
   * A commit's notify waits this long before its pass, so the commits of that moment are delivered
   * by one pass rather than one each (default 5 ms). Each pass costs a statement whatever it
   * carries, and on PGlite, where statements run one at a time, a pass per commit would add that
   * statement to every redemption.
   */
  coalesceMs?: number;
  batchSize?: number;
  /** How long a claimed event stays with this relay before another may deliver it again. */
  leaseMs?: number;
  logger: RelayLogger;
  /** Told how many events a pass handed to the bus, and of each event the bus refused (metrics). */
  onPublished?: (count: number) => void;
  onDeliveryFailure?: () => void;
}

export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private scheduled: NodeJS.Timeout | undefined;
  private again = false;
  /** Delivered by the last background pass; the next statement marks them published. */
  private unmarked: string[] = [];
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

  /** Ask for a drain soon; calls made while one is scheduled or runs coalesce into one more pass. */
  notify(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      if (this.stopped || this.draining) return;
      this.draining = this.drainLoop().finally(() => {
        this.draining = undefined;
      });
    }, this.coalesceMs);
  }

  private get coalesceMs(): number {
    return this.options.coalesceMs ?? 5;
  }

  /**
   * Deliver everything claimable now, and mark it published before returning. Waits for background
   * passes, before and after its own: one that started while this call ran may have claimed what this
   * call found no longer claimable, and returning then could leave those events undelivered (the pass
   * after it marks what that one left unmarked).
   */
  async drain(): Promise<number> {
    let delivered = 0;
    do {
      await this.draining;
      delivered += await this.pass(true);
    } while (this.draining);
    return delivered;
  }

  /**
   * Claim, deliver, repeat until nothing is claimable. Each statement marks what the previous one
   * claimed and delivered and claims the next batch. A background pass (`flush` false) leaves the
   * marks of its last batch to the next pass's statement (the next commit's or the next poll's), so a
   * pass that delivers one batch costs one statement; until then those events stay claimed (the lease),
   * and a crash in between delivers them again — at least once, as always.
   */
  private async pass(flush: boolean): Promise<number> {
    const batchSize = this.options.batchSize ?? 100;
    const leaseMs = this.options.leaseMs ?? 30_000;
    let delivered = 0;
    let published = this.unmarked;
    this.unmarked = [];
    if (!this.bus.isAvailable()) {
      // Nothing is claimed while the bus is away: a claim would hold the events for a lease after it
      // returns. They stay in the outbox (the API keeps answering) and go out on the pass it triggers.
      await this.mark(published);
      return 0;
    }
    for (;;) {
      let events: DomainEvent[];
      try {
        events = await outboxPass(this.db, published, batchSize, leaseMs);
      } catch (err) {
        // Not marked: the next pass tries again (the events stay claimed meanwhile).
        this.unmarked = published.concat(this.unmarked);
        throw err;
      }
      published = [];
      for (const event of events) {
        try {
          await this.bus.publish(event);
          published.push(event.id);
        } catch (err) {
          // Left claimed: the lease is the back-off before the next attempt.
          this.options.onDeliveryFailure?.();
          this.options.logger.error({ err, eventId: event.id, type: event.type }, 'event delivery failed');
          // The bus went away: the rest of the batch would fail too (and keep its order for later).
          if (!this.bus.isAvailable()) break;
        }
      }
      delivered += published.length;
      if (published.length > 0) this.options.onPublished?.(published.length);
      // A full batch that all went out: the next statement marks it and claims more.
      if (events.length === batchSize && published.length === events.length) continue;
      // Deferred only while a pass is sure to come well within the lease (the poll is at most half of
      // it): past the lease another relay could claim the events and deliver them again.
      if (flush || this.options.pollMs * 2 > leaseMs) await this.mark(published);
      else this.unmarked = this.unmarked.concat(published);
      return delivered;
    }
  }

  private async mark(ids: string[]): Promise<void> {
    try {
      await markPublished(this.db, ids);
    } catch (err) {
      this.unmarked = this.unmarked.concat(ids);
      throw err;
    }
  }

  private async drainLoop(): Promise<void> {
    for (;;) {
      this.again = false;
      try {
        await this.pass(false);
      } catch (err) {
        if (!this.stopped) this.options.logger.error({ err }, 'outbox relay pass failed');
      }
      if (!this.again || this.stopped) return;
      // Commits during the pass: gather a few more before the next one.
      await new Promise((resolve) => setTimeout(resolve, this.coalesceMs));
    }
  }

  /** Stop polling and wait for the pass under way, so no delivery is cut off mid-way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.scheduled) clearTimeout(this.scheduled);
    this.scheduled = undefined;
    await this.draining;
    if (this.unmarked.length > 0) {
      await this.mark(this.unmarked.splice(0)).catch((err: unknown) =>
        this.options.logger.error({ err }, 'outbox relay could not mark delivered events; they go out again'),
      );
    }
  }
}
