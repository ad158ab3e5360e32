/**
 * What became of a redeemed order, as the merchant reports it (M7): a chargeback, a refund, the order
 * fulfilled, or abuse confirmed. Each is recorded once per redemption and kind, evented, counted, and
 * feeds the labels the rules are measured against: a chargeback or confirmed abuse labels the
 * redemption's decision abuse; a fulfilled order labels it legitimate unless it already has a label.
 */
import { AppError } from '../errors.js';
import { appendEvents } from '../store/outbox.js';
import { insertOutcome, listOutcomes, type OutcomeKind, type RedemptionOutcome } from '../store/outcomes.js';
import { findRedemption } from '../store/redemptions.js';
import { labelDecision, type RuleLabel } from '../store/risk.js';
import type { Actor, ServiceContext } from './context.js';

export const OUTCOME_KINDS = ['chargeback', 'refund', 'fulfilled', 'confirmed_abuse'] as const;

const LABELS: Record<OutcomeKind, { label: RuleLabel; overrides: boolean } | null> = {
  chargeback: { label: 'abuse', overrides: true },
  confirmed_abuse: { label: 'abuse', overrides: true },
  fulfilled: { label: 'legitimate', overrides: false },
  refund: null,
};

export interface OutcomeInput {
  outcome: OutcomeKind;
  amountMinor: number | null;
  note: string | null;
  occurredAt: Date | null;
}

export class OutcomeService {
  constructor(private readonly ctx: ServiceContext) {}

  /** Record an outcome; a repeat of the same kind returns the first record and changes nothing. */
  async record(
    redemptionId: string,
    input: OutcomeInput,
    actor: Actor,
  ): Promise<{ outcome: RedemptionOutcome; created: boolean; labeled: RuleLabel | null }> {
    const now = this.ctx.clock.now();
    const result = await this.ctx.db.transaction().execute(async (trx) => {
      const redemption = await findRedemption(trx, redemptionId);
      if (!redemption) throw new AppError('redemption_not_found');
      const inserted = await insertOutcome(
        trx,
        {
          redemptionId,
          campaignId: redemption.campaignId,
          outcome: input.outcome,
          amountMinor: input.amountMinor,
          note: input.note,
          recordedBy: actor,
          occurredAt: input.occurredAt ?? now,
        },
        now,
      );
      if (!inserted) {
        const existing = (await listOutcomes(trx, redemptionId)).find((o) => o.outcome === input.outcome);
        if (!existing) throw new Error('outcome vanished after a conflicting insert');
        return { outcome: existing, created: false, labeled: null, redemption };
      }
      const rule = LABELS[input.outcome];
      let labeled: RuleLabel | null = null;
      if (rule && redemption.decisionId) {
        const applied = await labelDecision(trx, {
          decisionId: redemption.decisionId,
          label: rule.label,
          note: `order outcome: ${input.outcome}${input.note ? ` (${input.note})` : ''}`,
          actor,
          now,
          ifUnlabeled: !rule.overrides,
        });
        if (applied) labeled = rule.label;
      }
      await appendEvents(
        trx,
        [
          {
            type: 'redemption.outcome_recorded',
            aggregateId: redemptionId,
            payload: {
              redemption_id: redemptionId,
              campaign_id: redemption.campaignId,
              outcome: input.outcome,
              amount_minor: input.amountMinor,
              occurred_at: inserted.occurredAt.toISOString(),
              label: labeled,
              actor,
            },
          },
        ],
        now,
      );
      return { outcome: inserted, created: true, labeled, redemption };
    });
    if (result.created) {
      this.ctx.afterCommit();
      const m = this.ctx.metrics;
      if (m) {
        const campaign = m.campaignLabel(result.redemption.campaignId);
        m.inc('promoguard_redemption_outcomes_total', { campaign_id: campaign, outcome: input.outcome });
        if (result.labeled) {
          m.inc('promoguard_labels_total', { label: result.labeled, source: 'outcome' });
          if (result.labeled === 'abuse') {
            const seconds = (now.getTime() - result.redemption.createdAt.getTime()) / 1000;
            m.observe('promoguard_detection_latency_seconds', { source: 'label' }, Math.max(0, seconds));
          }
        }
      }
    }
    return { outcome: result.outcome, created: result.created, labeled: result.labeled };
  }

  list(redemptionId: string): Promise<RedemptionOutcome[]> {
    return listOutcomes(this.ctx.db, redemptionId);
  }
}
