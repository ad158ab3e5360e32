/** Domain objects -> the JSON the API documents (snake_case, ISO timestamps, amounts in minor units). */
import type { Static } from 'typebox';
import type { DiscountRule } from '../domain/money.js';
import type { BacktestResult } from '../services/rules.js';
import type { RiskRule, StoredDecision } from '../store/risk.js';
import type { CampaignRecord, CodeRecord, Redemption } from '../store/rows.js';
import type { Decision } from './schemas.js';

export const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** Who made a change, for the audit log: the API key's id. */
export const actorOf = (request: { apiKey: { id: string } | null }) => request.apiKey?.id ?? 'unknown';

export function discountJson(d: DiscountRule) {
  switch (d.type) {
    case 'fixed_amount':
      return { type: d.type, amount_minor: d.amountMinor };
    case 'percentage':
      return { type: d.type, basis_points: d.basisPoints, max_discount_minor: d.maxDiscountMinor };
    case 'free_shipping':
      return { type: d.type };
  }
}

export function campaignJson(c: CampaignRecord) {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    currency: c.currency,
    discount: discountJson(c.discount),
    starts_at: c.startsAt.toISOString(),
    ends_at: iso(c.endsAt),
    redemption_cap: c.redemptionCap,
    budget_minor: c.budgetMinor,
    per_customer_cap: c.perCustomerCap,
    per_person_cap: c.perPersonCap,
    throttle_per_minute: c.throttlePerMinute,
    min_order_minor: c.minOrderMinor,
    eligibility: {
      customer_ids: c.eligibility.customerIds,
      segments: c.eligibility.segments,
      regions: c.eligibility.regions,
      first_order_only: c.eligibility.firstOrderOnly,
    },
    redemptions_used: c.redemptionsUsed,
    spent_minor: c.spentMinor,
    metadata: c.metadata,
    version: c.version,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

export function codeJson(c: CodeRecord) {
  return {
    id: c.id,
    campaign_id: c.campaignId,
    batch_id: c.batchId,
    code: c.code,
    normalized: c.normalized,
    kind: c.kind,
    max_uses: c.maxUses,
    uses: c.uses,
    customer_id: c.customerId,
    status: c.status,
    partner: c.partner,
    amount_minor: c.amountMinor,
    expires_at: iso(c.expiresAt),
    created_at: c.createdAt.toISOString(),
    revoked_at: iso(c.revokedAt),
  };
}

/** The API form of a decision record (decisionRecord() or a stored one): what the rules saw, not the raw inputs. */
export function decisionJson(record: Record<string, unknown>): Static<typeof Decision> {
  const { inputs: _inputs, ...shown } = record as Static<typeof Decision> & { inputs?: unknown };
  // Maps in key order: a decision read back from jsonb (which reorders keys) answers byte for byte
  // like the one just taken, so an idempotent replay is identical to the first answer.
  const sorted = (m: Record<string, number>) =>
    Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    ...shown,
    features: sorted(shown.features),
    rules: shown.rules.map((r) => ({ ...r, features: sorted(r.features) })),
  };
}

export function ruleJson(r: RiskRule) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    expression: r.expression,
    action: r.action,
    reason: r.reason,
    mode: r.mode,
    campaign_id: r.campaignId,
    expires_at: iso(r.expiresAt),
    enabled: r.enabled,
    pack: r.pack,
    version: r.version,
    created_by: r.createdBy,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

export function storedDecisionJson(d: StoredDecision) {
  return {
    id: d.id,
    created_at: d.createdAt.toISOString(),
    operation: d.operation,
    campaign_id: d.campaignId,
    code_id: d.codeId,
    customer_id: d.customerId,
    redemption_id: d.redemptionId,
    action: d.action,
    outcome: d.outcome,
    label: d.label,
    decision: decisionJson(d.decision),
    inputs: (d.decision.inputs ?? {}) as Record<string, unknown>,
  };
}

export function backtestJson(b: BacktestResult) {
  return {
    from: b.from.toISOString(),
    to: b.to.toISOString(),
    evaluated: b.evaluated,
    hits: b.hits,
    unavailable: b.unavailable,
    errors: b.errors,
    hits_by_outcome: b.hitsByOutcome,
    labeled: b.labeled,
    true_positives: b.truePositives,
    false_positives: b.falsePositives,
    false_negatives: b.falseNegatives,
    precision: b.precision,
    recall: b.recall,
    sample_hits: b.sampleHits,
    truncated: b.truncated,
  };
}

/** `decision`: given for a single redemption (undefined in lists, where it is left out). */
export function redemptionJson(r: Redemption, decision?: Record<string, unknown> | null) {
  return {
    ...(decision !== undefined ? { decision: decision === null ? null : decisionJson(decision) } : {}),
    review_status: r.reviewStatus,
    id: r.id,
    status: r.status,
    campaign_id: r.campaignId,
    code_id: r.codeId,
    customer_id: r.customerId,
    order_id: r.orderId,
    currency: r.currency,
    subtotal_minor: r.subtotalMinor,
    discount_minor: r.discountMinor,
    created_at: r.createdAt.toISOString(),
    rolled_back_at: iso(r.rolledBackAt),
    rollback_reason: r.rollbackReason,
  };
}

/**
 * A page of `limit` items. Callers fetch `limit + 1`: the extra item only says that more follow, so the
 * last page has a null cursor even when it is full.
 */
export function page<T, J, C = string>(
  items: T[],
  limit: number,
  toJson: (item: T) => J,
  cursorOf: (item: T) => C = (item) => (item as { id: C }).id,
) {
  const shown = items.slice(0, limit);
  const last = shown[shown.length - 1];
  return {
    data: shown.map(toJson),
    next_cursor: items.length > limit && last !== undefined ? cursorOf(last) : null,
  };
}
