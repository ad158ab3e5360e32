/**
 * The review queue: redemptions a `review` decision let through (discount granted, order flagged),
 * oldest first, each with its decision and the accounts linked to its customer. An analyst approves or
 * rejects with a label; a rejection rolls the redemption back exactly once and emits an event. Labels
 * are kept on the decision: training data, and the ground truth of rule backtests.
 */
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { insertAudit } from '../store/audit.js';
import { type PersonLinks, personLinksOf } from '../store/controls.js';
import {
  customerHistory,
  extendOwnReview,
  findReviewCase,
  listReviews,
  type ReviewFilter,
  releaseReview,
  takeOldestReview,
  takeReview,
} from '../store/review-queue.js';
import {
  countPendingReviews,
  decisionsBetween,
  findDecision,
  findDecisions,
  labelDecision,
  type RuleLabel,
  reviewRedemption,
  type StoredDecision,
} from '../store/risk.js';
import type { Redemption } from '../store/rows.js';
import type { Actor, ServiceContext } from './context.js';

/** The period `GET /v1/decisions` lists when the caller names no `from`: the last 24 hours. */
export const DEFAULT_DECISIONS_WINDOW_MS = 24 * 60 * 60 * 1000;

export type Verdict = 'approve' | 'reject';

export interface ReviewQueueOptions {
  /** A pending case older than this is overdue. */
  slaMinutes: number;
  /** How long taking a case holds it for the analyst. */
  lockMinutes: number;
}

/** How many of a customer's redemptions and decisions a case shows. */
const HISTORY_LIMIT = 20;

export interface ReviewItem {
  redemption: Redemption;
  decision: StoredDecision | null;
  links: PersonLinks;
}

export type BulkOutcome = 'decided' | 'unchanged' | 'locked' | 'conflict' | 'not_found' | 'not_under_review';

export class ReviewService {
  constructor(
    private readonly ctx: ServiceContext,
    readonly options: ReviewQueueOptions,
  ) {}

  /** The service's clock: ages and locks are judged against it. */
  now(): Date {
    return this.ctx.clock.now();
  }

  /** The inbox: cases matching the filter, each with its decision and the accounts linked to it. */
  async list(filter: Omit<ReviewFilter, 'now' | 'heldBefore'> & { minAgeMinutes?: number | undefined }) {
    const now = this.ctx.clock.now();
    const { minAgeMinutes, ...rest } = filter;
    const heldBefore =
      minAgeMinutes === undefined ? undefined : new Date(now.getTime() - minAgeMinutes * 60_000);
    const items = await listReviews(this.ctx.db, { ...rest, heldBefore, now });
    return this.withContext(items);
  }

  /** One case with its decision, linked accounts and the customer's recent history. */
  async case(id: string) {
    const redemption = await findReviewCase(this.ctx.db, id);
    if (!redemption) throw new AppError('redemption_not_found');
    if (redemption.reviewStatus === null) {
      throw new AppError('not_under_review', 'this redemption was never held for review');
    }
    const [[item], history] = await Promise.all([
      this.withContext([redemption]),
      customerHistory(this.ctx.db, redemption.customerId, HISTORY_LIMIT),
    ]);
    return { ...(item as ReviewItem), history };
  }

  /** Cases with their decisions and linked accounts, read in a fixed number of queries. */
  private async withContext(redemptions: Redemption[]): Promise<ReviewItem[]> {
    const decisionIds = redemptions.flatMap((r) => (r.decisionId ? [r.decisionId] : []));
    const [decisions, links] = await Promise.all([
      findDecisions(this.ctx.db, decisionIds),
      personLinksOf(
        this.ctx.db,
        redemptions.map((r) => r.customerId),
      ),
    ]);
    return redemptions.map((redemption) => ({
      redemption,
      decision: redemption.decisionId ? (decisions.get(redemption.decisionId) ?? null) : null,
      links: links.get(redemption.customerId) as PersonLinks,
    }));
  }

  private async one(redemption: Redemption): Promise<ReviewItem> {
    return (await this.withContext([redemption]))[0] as ReviewItem;
  }

  /** When a lock taken now runs out. */
  private lockUntil(now: Date): Date {
    return new Date(now.getTime() + this.options.lockMinutes * 60_000);
  }

  /**
   * The case to work on next: the one the analyst already holds (its lock extended), else the oldest
   * pending case nobody holds, now theirs. Null when every pending case is held by someone.
   */
  async next(actor: Actor) {
    const now = this.ctx.clock.now();
    const until = this.lockUntil(now);
    const taken = await this.ctx.db.transaction().execute(async (trx) => {
      const own = await extendOwnReview(trx, { actor, now, until });
      if (own) return own;
      const fresh = await takeOldestReview(trx, { actor, now, until });
      if (fresh) await this.auditAssignment(trx, 'review.assigned', fresh, actor, now);
      return fresh;
    });
    return taken ? this.one(taken) : null;
  }

  /** Take a named case (from the inbox); taking one already held extends its lock. */
  async take(id: string, actor: Actor) {
    const now = this.ctx.clock.now();
    const taken = await this.ctx.db.transaction().execute(async (trx) => {
      const outcome = await takeReview(trx, { id, actor, now, until: this.lockUntil(now) });
      if (outcome?.fresh) await this.auditAssignment(trx, 'review.assigned', outcome.redemption, actor, now);
      return outcome?.redemption ?? null;
    });
    if (!taken) await this.explainRefusal(id);
    return this.one(taken as Redemption);
  }

  /** Give a case back to the queue. Releasing a case nobody holds changes nothing. */
  async release(id: string, actor: Actor) {
    const now = this.ctx.clock.now();
    const released = await this.ctx.db.transaction().execute(async (trx) => {
      const r = await releaseReview(trx, { id, actor, now });
      if (r) await this.auditAssignment(trx, 'review.released', r, actor, now);
      return r;
    });
    if (released) return this.one(released);
    const current = await findReviewCase(this.ctx.db, id);
    if (!current) throw new AppError('redemption_not_found');
    if (current.reviewStatus === null) {
      throw new AppError('not_under_review', 'this redemption was never held for review');
    }
    if (heldByOther(current, actor, now)) throw lockedError(current);
    return this.one(current);
  }

  /** Why a case could not be taken: missing, never held, decided, or another analyst's. */
  private async explainRefusal(id: string): Promise<never> {
    const current = await findReviewCase(this.ctx.db, id);
    if (!current) throw new AppError('redemption_not_found');
    if (current.reviewStatus === null) {
      throw new AppError('not_under_review', 'this redemption was never held for review');
    }
    if (current.reviewStatus !== 'pending') {
      throw new AppError('review_closed', `this review was already decided (${current.reviewStatus})`);
    }
    // Pending and not takeable: another analyst holds it (lockedError says until when).
    throw lockedError(current);
  }

  private auditAssignment(
    trx: ServiceContext['db'],
    action: 'review.assigned' | 'review.released',
    r: Redemption,
    actor: Actor,
    now: Date,
  ) {
    return insertAudit(
      trx,
      {
        actor,
        action,
        targetId: r.id,
        reason: null,
        details: {
          customer_id: r.customerId,
          campaign_id: r.campaignId,
          ...(action === 'review.assigned' ? { locked_until: r.reviewLockedUntil?.toISOString() } : {}),
        },
      },
      now,
    );
  }

  /**
   * Decide several cases with one verdict (a ring): each is decided on its own, as `decide` would,
   * and audited; a case another analyst holds, or one decided the other way, is reported, not forced.
   */
  async decideMany(
    ids: readonly string[],
    verdict: Verdict,
    label: RuleLabel | undefined,
    note: string | null,
    actor: Actor,
  ): Promise<{ id: string; outcome: BulkOutcome; redemption: Redemption | null }[]> {
    const results: { id: string; outcome: BulkOutcome; redemption: Redemption | null }[] = [];
    for (const id of ids) {
      try {
        const { redemption, changed } = await this.decideOne(id, verdict, label, note, actor);
        results.push({ id, outcome: changed ? 'decided' : 'unchanged', redemption });
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        const outcome: Record<string, BulkOutcome> = {
          review_locked: 'locked',
          review_already_decided: 'conflict',
          redemption_not_found: 'not_found',
          not_under_review: 'not_under_review',
        };
        const mapped = outcome[error.code];
        if (!mapped) throw error;
        results.push({ id, outcome: mapped, redemption: null });
      }
    }
    return results;
  }

  queueLength(): Promise<number> {
    return countPendingReviews(this.ctx.db);
  }

  /**
   * Approve or reject. A repeat of the same verdict returns the redemption unchanged; the other
   * verdict after one was given is a conflict (a decided review is not re-opened).
   */
  async decide(
    id: string,
    verdict: Verdict,
    label: RuleLabel | undefined,
    note: string | null,
    actor: Actor,
  ): Promise<Redemption> {
    return (await this.decideOne(id, verdict, label, note, actor)).redemption;
  }

  private async decideOne(
    id: string,
    verdict: Verdict,
    label: RuleLabel | undefined,
    note: string | null,
    actor: Actor,
  ): Promise<{ redemption: Redemption; changed: boolean }> {
    const now = this.ctx.clock.now();
    const outcome = await reviewRedemption(this.ctx.db, {
      id,
      verdict,
      label: label ?? (verdict === 'approve' ? 'legitimate' : 'abuse'),
      note,
      actor,
      eventId: newId('event', now.getTime()),
      rollbackEventId: newId('event', now.getTime()),
      now,
    });
    switch (outcome.outcome) {
      case 'not_found':
        throw new AppError('redemption_not_found');
      case 'not_under_review':
        throw new AppError('not_under_review', 'this redemption was never held for review');
      case 'locked':
        throw lockedError(outcome.redemption);
      case 'already_reviewed': {
        const given = outcome.redemption.reviewStatus === 'approved' ? 'approve' : 'reject';
        if (given !== verdict) {
          throw new AppError('review_already_decided', `this review was already decided (${given})`);
        }
        return { redemption: outcome.redemption, changed: false };
      }
      case 'reviewed':
        this.ctx.afterCommit();
        this.count(outcome.redemption, verdict, label ?? (verdict === 'approve' ? 'legitimate' : 'abuse'));
        return { redemption: outcome.redemption, changed: true };
    }
  }

  /** M2 labels and M4 value: a rejection rolls the redemption back, so its discount comes back. */
  private count(r: Redemption, verdict: Verdict, label: RuleLabel): void {
    const m = this.ctx.metrics;
    if (!m) return;
    m.inc('promoguard_labels_total', { label, source: 'review' });
    if (verdict !== 'reject') return;
    const campaign = m.campaignLabel(r.campaignId);
    const money = { campaign_id: campaign, currency: r.currency };
    m.inc('promoguard_rollbacks_total', { campaign_id: campaign, source: 'review' });
    m.inc('promoguard_rolled_back_discount_minor_total', money, r.discountMinor);
    m.inc('promoguard_review_rejected_discount_minor_total', money, r.discountMinor);
  }

  /**
   * Decisions of `[from, to)`. Without `to` the period ends now; without `from` it starts
   * DEFAULT_DECISIONS_WINDOW_MS before its end, so an unbounded request never scans the whole table.
   */
  decisions(
    filter: Omit<Parameters<typeof decisionsBetween>[1], 'from' | 'to'> & {
      from?: Date | undefined;
      to?: Date | undefined;
    },
  ): Promise<StoredDecision[]> {
    const to = filter.to ?? this.ctx.clock.now();
    const from = filter.from ?? new Date(to.getTime() - DEFAULT_DECISIONS_WINDOW_MS);
    return decisionsBetween(this.ctx.db, { ...filter, from, to });
  }

  async decision(id: string): Promise<StoredDecision> {
    const d = await findDecision(this.ctx.db, id);
    if (!d) throw new AppError('decision_not_found');
    return d;
  }

  async label(id: string, label: RuleLabel, note: string | null, actor: Actor): Promise<StoredDecision> {
    const now = this.ctx.clock.now();
    if (!(await labelDecision(this.ctx.db, { decisionId: id, label, note, actor, now }))) {
      throw new AppError('decision_not_found');
    }
    this.ctx.metrics?.inc('promoguard_labels_total', { label, source: 'decision' });
    return this.decision(id);
  }
}

function heldByOther(r: Redemption, actor: Actor, now: Date): boolean {
  return (
    r.reviewAssignedTo !== null &&
    r.reviewAssignedTo !== actor &&
    r.reviewLockedUntil !== null &&
    r.reviewLockedUntil > now
  );
}

/** The 409 for a case another analyst holds: who and until when, so the console can say so. */
function lockedError(r: Redemption): AppError {
  const until = r.reviewLockedUntil?.toISOString() ?? null;
  return new AppError(
    'review_locked',
    until
      ? `another analyst holds this case until ${until}; it is theirs to decide until then`
      : 'another analyst took this case a moment ago; try again',
    { assigned_to: r.reviewAssignedTo, locked_until: until },
  );
}
