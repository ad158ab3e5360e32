/**
 * The review queue: redemptions a `review` decision let through (discount granted, order flagged),
 * oldest first, each with its decision and the accounts linked to its customer. An analyst approves or
 * rejects with a label; a rejection rolls the redemption back exactly once and emits an event. Labels
 * are kept on the decision: training data, and the ground truth of rule backtests.
 */
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { personLinks } from '../store/controls.js';
import {
  countPendingReviews,
  decisionsBetween,
  findDecision,
  labelDecision,
  pendingReviews,
  type RuleLabel,
  reviewRedemption,
  type StoredDecision,
} from '../store/risk.js';
import type { Redemption } from '../store/rows.js';
import type { Actor, ServiceContext } from './context.js';

export type Verdict = 'approve' | 'reject';

export class ReviewService {
  constructor(private readonly ctx: ServiceContext) {}

  async pending(page: { limit: number; after?: string | undefined; campaignId?: string | undefined }) {
    const items = await pendingReviews(this.ctx.db, page);
    return Promise.all(
      items.map(async (redemption) => ({
        redemption,
        decision: redemption.decisionId ? await findDecision(this.ctx.db, redemption.decisionId) : null,
        links: await personLinks(this.ctx.db, redemption.customerId),
      })),
    );
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
      case 'already_reviewed': {
        const given = outcome.redemption.reviewStatus === 'approved' ? 'approve' : 'reject';
        if (given !== verdict) {
          throw new AppError('review_already_decided', `this review was already decided (${given})`);
        }
        return outcome.redemption;
      }
      case 'reviewed':
        this.ctx.afterCommit();
        this.count(outcome.redemption, verdict, label ?? (verdict === 'approve' ? 'legitimate' : 'abuse'));
        return outcome.redemption;
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

  decisions(filter: Parameters<typeof decisionsBetween>[1]): Promise<StoredDecision[]> {
    return decisionsBetween(this.ctx.db, filter);
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
