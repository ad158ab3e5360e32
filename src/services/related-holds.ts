/**
 * A review rule with `hold_with` counts other fresh accounts (a referral ring, a flood on a leaked
 * code): when it holds a redemption, the earlier ones it counted passed unflagged. They are held now,
 * each with an audit entry and a `redemption.held` event (a shop holds the order until the review),
 * so an analyst sees the whole ring in the queue rather than its last member.
 */
import type { HoldWith } from '../domain/risk.js';
import { idFloor } from '../lib/ids.js';
import type { RiskDecision } from '../risk/engine.js';
import { insertAudit } from '../store/audit.js';
import { appendEvents } from '../store/outbox.js';
import { holdRelated } from '../store/review-queue.js';
import type { Redemption, RedemptionRow } from '../store/rows.js';
import type { ServiceContext } from './context.js';

/** How far back each reach looks: the window of the feature it is named after. */
const REACH_MS: Record<HoldWith, number> = {
  code_new_accounts_24h: 24 * 3_600_000,
  campaign_new_accounts_1h: 3_600_000,
};

/**
 * Hold the earlier redemptions `decision`'s rules reach. The redemption itself is already committed:
 * a failure here is counted and leaves the earlier ones as they were, never fails the answer.
 */
export async function holdRelatedRedemptions(
  ctx: ServiceContext,
  redemption: Redemption,
  decision: RiskDecision,
  now: Date,
): Promise<number> {
  let held = 0;
  for (const reach of decision.holdWith) {
    try {
      const rows = await ctx.db.transaction().execute(async (trx) => {
        const rows = await holdRelated(trx, {
          campaignId: redemption.campaignId,
          codeId: reach === 'code_new_accounts_24h' ? redemption.codeId : null,
          sinceId: idFloor('redemption', now.getTime() - REACH_MS[reach]),
        });
        for (const row of rows) {
          await insertAudit(
            trx,
            {
              actor: 'promoguard',
              action: 'review.held',
              targetId: row.id,
              reason: `held with ${redemption.id} (${decision.because.join(', ')})`,
              details: {
                held_with: redemption.id,
                hold_with: reach,
                rule_ids: decision.because,
                customer_id: row.customer_id,
                campaign_id: row.campaign_id,
                decision_id: row.decision_id,
              },
            },
            now,
          );
        }
        await appendEvents(
          trx,
          rows.map((row) => {
            const { context: _stored, ...published } = row as RedemptionRow & { context?: unknown };
            return {
              type: 'redemption.held' as const,
              aggregateId: row.id,
              payload: {
                redemption: published,
                held_with: redemption.id,
                hold_with: reach,
                rule_ids: decision.because,
              },
            };
          }),
          now,
        );
        return rows;
      });
      if (rows.length > 0) ctx.afterCommit();
      held += rows.length;
      ctx.metrics?.inc('promoguard_related_holds_total', { hold_with: reach, result: 'held' }, rows.length);
    } catch {
      ctx.metrics?.inc('promoguard_related_holds_total', { hold_with: reach, result: 'failed' });
    }
  }
  return held;
}
