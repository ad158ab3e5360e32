/**
 * One detection node at a time among many: the detectors count each key's events, so two nodes sharing
 * the work queue would each see half and judge wrong. Every node with DETECTION=on competes for a lease
 * in the database; the holder runs the detectors and renews every third of the lease, the others try
 * as often and take over once it lapses (a crash) or is released (a clean shutdown), restoring the
 * saved state and resuming the durable consumer where it stopped.
 */
import { randomBytes } from 'node:crypto';
import { acquireLease, releaseLease } from '../store/leases.js';
import type { ServiceContext } from './context.js';
import type { DetectionService } from './detection.js';

export const DETECTION_LEASE = 'detection';

export interface DetectionLeaderOptions {
  leaseMs: number;
  logger: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Starts the detectors (subscriptions included); called each time this node takes the lease. */
  start: () => Promise<void>;
  nodeId?: string;
}

export class DetectionLeader {
  readonly nodeId: string;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  /** When the lease was last renewed (monotonic ms): past leaseMs without renewal it may be another's. */
  private renewedAt = 0;
  private turn: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly detection: DetectionService,
    private readonly options: DetectionLeaderOptions,
  ) {
    this.nodeId = options.nodeId ?? randomBytes(8).toString('hex');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Competes once now (so a lone node detects from its first request), then every third of the lease. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.step();
    this.timer = setInterval(
      () => {
        void this.step();
      },
      Math.max(200, Math.floor(this.options.leaseMs / 3)),
    );
    this.timer.unref();
  }

  /** One round: take or renew the lease, start or stop the detectors to match. Rounds never overlap. */
  step(): Promise<void> {
    this.turn = this.turn.then(() => this.round());
    return this.turn;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    let held: boolean;
    try {
      held = await acquireLease(this.ctx.db, DETECTION_LEASE, this.nodeId, this.options.leaseMs);
    } catch (err) {
      // Unknown: the lease may still be ours. Keep detecting until it would have lapsed, then stop.
      if (this.leading && performance.now() - this.renewedAt > this.options.leaseMs) {
        this.options.logger.error({ err }, 'detection lease not renewed in time; detectors stopped');
        await this.demote();
      }
      return;
    }
    if (held) {
      this.renewedAt = performance.now();
      if (!this.leading) await this.promote();
    } else if (this.leading) {
      this.options.logger.error(
        { node: this.nodeId },
        'detection lease taken by another node; detectors stopped',
      );
      await this.demote();
    }
  }

  private async promote(): Promise<void> {
    try {
      await this.options.start();
      this.leading = true;
      this.ctx.metrics?.set('promoguard_detection_leader', {}, 1);
      this.options.logger.info({ node: this.nodeId }, 'this node runs the streaming detectors');
    } catch (err) {
      this.options.logger.error({ err }, 'detectors could not start; the lease is given up');
      await this.detection.stop({ save: false }).catch(() => undefined);
      await releaseLease(this.ctx.db, DETECTION_LEASE, this.nodeId).catch(() => undefined);
    }
  }

  private async demote(): Promise<void> {
    this.leading = false;
    this.ctx.metrics?.set('promoguard_detection_leader', {}, 0);
    await this.detection.stop({ save: false });
  }

  /** A clean shutdown: stop detecting, save the state, and hand the lease over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.turn;
    if (!this.leading) return;
    this.leading = false;
    this.ctx.metrics?.set('promoguard_detection_leader', {}, 0);
    try {
      await this.detection.stop();
    } finally {
      await releaseLease(this.ctx.db, DETECTION_LEASE, this.nodeId).catch((err: unknown) =>
        this.options.logger.error({ err }, 'detection lease not released; it lapses on its own'),
      );
    }
  }
}
