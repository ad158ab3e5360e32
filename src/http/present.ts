/** Domain objects -> the JSON the API documents (snake_case, ISO timestamps, amounts in minor units). */
import type { DiscountRule } from '../domain/money.js';
import type { CampaignRecord, CodeRecord, Redemption } from '../store/rows.js';

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

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

export function redemptionJson(r: Redemption) {
  return {
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
