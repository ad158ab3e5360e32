/**
 * Reconciliation runs: on demand (API, CLI) and on a schedule, one at a time across every node. A run
 * walks the campaigns in batches, then the points accounts in batches of customers, then the whole-
 * database checks (ledger entries of no campaign, missing events, undelivered events), adding each
 * batch's mismatches to its report as it goes, and closes the report once: ok, mismatch or failed.
 */
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import {
  type Check,
  campaignBatch,
  countCampaigns,
  countPointsAccounts,
  findReconciliation,
  finishReconciliation,
  iterateMismatches,
  KIND_NAMES,
  type KindSummary,
  listMismatches,
  listReconciliations,
  MISMATCH_KINDS,
  type MismatchItem,
  type MismatchKind,
  pointsBatchEnd,
  type Reconciliation,
  type ReconciliationFailure,
  type ReconciliationSummary,
  renewReconciliation,
  runCheck,
  startReconciliation,
  type Tally,
} from '../store/reconciliation.js';
import type { ServiceContext } from './context.js';

export type ReconciliationPhase = 'campaigns' | 'points' | 'ledger' | 'events' | 'outbox';

/** `done` of `total` units: campaigns, then points accounts, then one per whole-database check. */
export interface ReconciliationProgress {
  phase: ReconciliationPhase;
  done: number;
  total: number;
}

export interface ReconciliationSettings {
  /** Minutes between scheduled runs; 0 = no schedule. */
  intervalMinutes: number;
  logger: { error(obj: object, msg: string): void };
  /** Campaigns checked per statement, at most. */
  campaignBatchSize?: number;
  /** Redemptions in force (by the campaigns' counters) checked per statement, at most. */
  campaignBatchRedemptions?: number;
  /** Points accounts checked per statement. */
  pointsBatchSize?: number;
  /** An event unpublished for longer than this is reported as undelivered. */
  outboxGraceMs?: number;
  /** Mismatches of one kind kept as items per run; the summary counts all of them. */
  itemLimitPerKind?: number;
  heartbeatMs?: number;
  /** A running report not renewed for this long was left by a node that stopped; the next start closes it. */
  staleAfterMs?: number;
}

export type RunOutcome =
  | { outcome: 'finished'; reconciliation: Reconciliation }
  | { outcome: 'running'; id: string }
  | { outcome: 'not_due' };

export const DEFAULT_OUTBOX_GRACE_MS = 5 * 60_000;
export const DEFAULT_ITEM_LIMIT_PER_KIND = 100_000;

class Interrupted extends Error {
  override name = 'Interrupted';
}

/** The running totals of a run, per kind and currency. */
class Tallies {
  private readonly kinds = new Map<MismatchKind, KindSummary>();

  constructor(private readonly limit: number) {
    for (const kind of KIND_NAMES) {
      const unit = MISMATCH_KINDS[kind];
      this.kinds.set(kind, {
        unit,
        rows: 0,
        itemised: 0,
        difference: 0,
        ...(unit === 'minor' ? { by_currency: {} } : {}),
      });
    }
  }

  add(tallies: Tally[]): void {
    for (const t of tallies) {
      const k = this.kinds.get(t.kind);
      if (!k) continue;
      k.rows += t.rows;
      k.itemised += t.itemised;
      k.difference += t.difference;
      if (k.by_currency && t.currency !== null) {
        k.by_currency[t.currency] = (k.by_currency[t.currency] ?? 0) + t.difference;
      }
    }
  }

  remaining(): Record<MismatchKind, number> {
    return Object.fromEntries(
      KIND_NAMES.map((kind) => [kind, Math.max(0, this.limit - (this.kinds.get(kind)?.itemised ?? 0))]),
    ) as Record<MismatchKind, number>;
  }

  summary(checked: ReconciliationSummary['checked']): ReconciliationSummary {
    const kinds = Object.fromEntries(this.kinds) as Record<MismatchKind, KindSummary>;
    const mismatched = [...this.kinds.values()].reduce((sum, k) => sum + k.rows, 0);
    return { checked, mismatched_rows: mismatched, kinds };
  }
}

export class ReconciliationService {
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly settings: ReconciliationSettings,
  ) {}

  /** Run now, unless a run is already in progress (on any node). */
  run(triggeredBy: string, onProgress?: (p: ReconciliationProgress) => void): Promise<RunOutcome> {
    return this.track(this.start(triggeredBy, null, onProgress));
  }

  /** Run if none started within the interval: what every node's schedule asks on each tick. */
  runIfDue(): Promise<RunOutcome> {
    const since = new Date(this.ctx.clock.now().getTime() - this.settings.intervalMinutes * 60_000);
    return this.track(this.start('schedule', since));
  }

  /**
   * Ask every `tickMs` whether a scheduled run is due. Each node asks; the database decides, so one
   * node runs it. Off when the interval is 0.
   */
  startSchedule(tickMs = 60_000): void {
    if (this.settings.intervalMinutes <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (this.scheduled || this.stopping) return;
      this.scheduled = true;
      this.runIfDue()
        .catch((err: unknown) =>
          this.settings.logger.error({ err }, 'scheduled reconciliation failed to start'),
        )
        .finally(() => {
          this.scheduled = false;
        });
    }, tickMs);
    this.timer.unref();
  }

  /** Stop the schedule; a run in progress stops at its next batch and closes its report as interrupted. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping = true;
    await Promise.allSettled([...this.inFlight]);
  }

  async get(id: string): Promise<Reconciliation> {
    const found = await findReconciliation(this.ctx.db, id);
    if (!found) throw new AppError('reconciliation_not_found');
    return found;
  }

  list(p: { limit: number; before?: string | undefined }): Promise<Reconciliation[]> {
    return listReconciliations(this.ctx.db, p);
  }

  mismatches(
    id: string,
    p: { limit: number; after?: number | undefined; kind?: MismatchKind | undefined },
  ): Promise<MismatchItem[]> {
    return listMismatches(this.ctx.db, id, p);
  }

  iterateMismatches(id: string): AsyncGenerator<MismatchItem[]> {
    return iterateMismatches(this.ctx.db, id);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    return promise.finally(() => this.inFlight.delete(promise));
  }

  private async start(
    triggeredBy: string,
    dueIfNoneSince: Date | null,
    onProgress?: (p: ReconciliationProgress) => void,
  ): Promise<RunOutcome> {
    if (this.stopping) throw new Error('the reconciliation service is stopping');
    const now = this.ctx.clock.now();
    const started = await startReconciliation(this.ctx.db, {
      id: newId('reconciliation', now.getTime()),
      triggeredBy,
      now,
      staleBefore: new Date(now.getTime() - (this.settings.staleAfterMs ?? 5 * 60_000)),
      dueIfNoneSince,
    });
    if (started.outcome !== 'started') return started;
    return { outcome: 'finished', reconciliation: await this.execute(started.reconciliation, onProgress) };
  }

  private async execute(
    report: Reconciliation,
    onProgress?: (p: ReconciliationProgress) => void,
  ): Promise<Reconciliation> {
    const { db, clock } = this.ctx;
    const { logger } = this.settings;
    const graceMs = this.settings.outboxGraceMs ?? DEFAULT_OUTBOX_GRACE_MS;
    const tallies = new Tallies(this.settings.itemLimitPerKind ?? DEFAULT_ITEM_LIMIT_PER_KIND);
    const checked = { campaigns: 0, points_accounts: 0, outbox_grace_seconds: Math.round(graceMs / 1000) };
    // Renewed beside the checks, not between them: one statement over a large table may outlast it.
    const heartbeat = setInterval(() => {
      renewReconciliation(db, report.id, clock.now()).catch((err: unknown) =>
        logger.error({ err, reconciliation: report.id }, 'reconciliation heartbeat failed'),
      );
    }, this.settings.heartbeatMs ?? 30_000);
    heartbeat.unref();
    try {
      const campaignCount = await countCampaigns(db);
      const accountCount = await countPointsAccounts(db);
      const total = campaignCount + accountCount + 3;
      let done = 0;
      const step = async (check: Check, units: number, phase: ReconciliationPhase) => {
        if (this.stopping) throw new Interrupted('the node is shutting down');
        tallies.add(await runCheck(db, report.id, tallies.remaining(), check));
        // Rows added while the run goes on may pass the counts taken at its start.
        done = Math.min(total, done + units);
        onProgress?.({ phase, done, total });
      };
      onProgress?.({ phase: 'campaigns', done, total });

      const campaignBatchSize = this.settings.campaignBatchSize ?? 1_000;
      const campaignBatchRedemptions = this.settings.campaignBatchRedemptions ?? 500_000;
      let afterCampaign: string | null = null;
      for (;;) {
        const ids = await campaignBatch(db, afterCampaign, campaignBatchSize, campaignBatchRedemptions);
        if (ids.length === 0) break;
        await step({ kind: 'campaigns', campaignIds: ids }, ids.length, 'campaigns');
        checked.campaigns += ids.length;
        afterCampaign = ids[ids.length - 1] ?? null;
      }

      const pointsBatchSize = this.settings.pointsBatchSize ?? 5_000;
      let afterCustomer: string | null = null;
      for (;;) {
        const upTo = await pointsBatchEnd(db, afterCustomer, pointsBatchSize);
        const units = upTo === null ? Math.max(0, accountCount - checked.points_accounts) : pointsBatchSize;
        await step({ kind: 'points', after: afterCustomer, upTo }, units, 'points');
        checked.points_accounts += units;
        if (upTo === null) break;
        afterCustomer = upTo;
      }

      await step({ kind: 'orphan_ledger' }, 1, 'ledger');
      await step({ kind: 'events' }, 1, 'events');
      await step({ kind: 'undelivered', cutoff: new Date(clock.now().getTime() - graceMs) }, 1, 'outbox');

      const summary = tallies.summary(checked);
      const status = summary.mismatched_rows > 0 ? 'mismatch' : 'ok';
      const finished = await finishReconciliation(db, report.id, { status, summary }, clock.now());
      if (!finished) return await this.closedElsewhere(report);
      if (status === 'mismatch') {
        const kinds = Object.fromEntries(
          Object.entries(summary.kinds)
            .filter(([, k]) => k.rows > 0)
            .map(([kind, k]) => [kind, { rows: k.rows, difference: k.difference }]),
        );
        logger.error(
          { reconciliation: report.id, mismatched_rows: summary.mismatched_rows, kinds },
          'reconciliation found mismatches',
        );
      }
      return finished;
    } catch (err) {
      const failure: ReconciliationFailure = err instanceof Interrupted ? 'interrupted' : 'error';
      if (failure === 'error') logger.error({ err, reconciliation: report.id }, 'reconciliation failed');
      const closed = await finishReconciliation(
        db,
        report.id,
        { status: 'failed', summary: tallies.summary(checked), failure },
        clock.now(),
      ).catch(() => null);
      return closed ?? (await this.closedElsewhere(report, failure));
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** The report as it stands after another node closed it (abandoned), or as failed when unreadable. */
  private async closedElsewhere(
    report: Reconciliation,
    failure: ReconciliationFailure = 'abandoned',
  ): Promise<Reconciliation> {
    const current = await findReconciliation(this.ctx.db, report.id).catch(() => null);
    return current ?? { ...report, status: 'failed', failure, finishedAt: this.ctx.clock.now() };
  }
}
