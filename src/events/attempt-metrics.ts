/**
 * The node's counters and histograms fed from telemetry: M1 (redemptions by campaign and outcome),
 * M2 (decisions and rule hits), M3 (durations), M4 (rollbacks), M6 (account age), M8 (review holds).
 * Labels hold only bounded values: campaign ids through campaignLabel(), refusal reasons from the
 * closed list, rule ids chosen by the operator.
 */
import type { ACCOUNT_AGE_CLASSES } from '../metrics/catalogue.js';
import type { Metrics } from '../metrics/registry.js';
import type { Attempt, Telemetry } from './telemetry.js';

type AccountAge = (typeof ACCOUNT_AGE_CLASSES)[number];

/** The M6 class of an account `hours` old. */
export function accountAgeClass(hours: number | null): AccountAge {
  if (hours === null || !Number.isFinite(hours) || hours < 0) return 'unknown';
  if (hours < 1) return 'lt_1h';
  if (hours < 24) return 'lt_24h';
  if (hours < 24 * 7) return 'lt_7d';
  if (hours < 24 * 30) return 'lt_30d';
  return 'gte_30d';
}

export function countAttempts(telemetry: Telemetry, metrics: Metrics): () => void {
  return telemetry.on((a) => countAttempt(metrics, a));
}

function countAttempt(m: Metrics, a: Attempt): void {
  const campaign = m.campaignLabel(a.campaignId);
  const reason = a.reason ?? '';
  switch (a.kind) {
    case 'validation':
      m.inc('promoguard_validations_total', { campaign_id: campaign, outcome: a.outcome, reason });
      m.observe('promoguard_validation_duration_seconds', {}, a.durationMs / 1000);
      break;
    case 'redemption':
      m.inc('promoguard_redemptions_total', { campaign_id: campaign, outcome: a.outcome, reason });
      m.observe('promoguard_redemption_duration_seconds', {}, a.durationMs / 1000);
      if (a.outcome === 'redeemed') {
        if (a.amountMinor > 0 && a.currency) {
          m.inc(
            'promoguard_discount_granted_minor_total',
            { campaign_id: campaign, currency: a.currency },
            a.amountMinor,
          );
        }
        m.inc('promoguard_redemptions_by_account_age_total', {
          campaign_id: campaign,
          account_age: accountAgeClass(a.accountAgeHours),
        });
        // A hold is the earliest flag a redemption can get: at its own commit.
        if (a.decision?.action === 'review') {
          m.observe('promoguard_detection_latency_seconds', { source: 'review_hold' }, 0);
        }
      }
      break;
    case 'rollback':
      m.inc('promoguard_rollbacks_total', { campaign_id: campaign, source: 'merchant' });
      if (a.currency) {
        m.inc(
          'promoguard_rolled_back_discount_minor_total',
          { campaign_id: campaign, currency: a.currency },
          a.amountMinor,
        );
      }
      break;
    case 'conversion':
      break;
  }
  if (a.decision) {
    m.inc('promoguard_risk_decisions_total', { operation: a.kind, action: a.decision.action });
    for (const rule of a.decision.rules) {
      m.inc('promoguard_rule_hits_total', { rule_id: rule.id, mode: rule.mode, action: rule.action });
    }
  }
}
