/**
 * Row -> domain mapping. Rows arrive either from Kysely (timestamps as Date) or as jsonb built by the
 * database functions (timestamps as ISO text); both are typed by schema.ts, and every mapper accepts
 * both forms.
 */
import type { Campaign, Code, Eligibility, PlannedPeak } from '../domain/campaign.js';
import type { DiscountRule } from '../domain/money.js';
import type {
  CampaignsTable,
  CodesTable,
  JsonRow,
  PlannedPeakJson,
  RedemptionStatus,
  RedemptionsTable,
  ReviewStatus,
} from './schema.js';

export type { RedemptionStatus, ReviewStatus } from './schema.js';

export function toDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}

export function toDateOrNull(value: Date | string | null): Date | null {
  return value === null ? null : toDate(value);
}

/** A jsonb result of one of the database functions: the value, or its text on drivers that return text. */
export function parseJsonResult<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function discountFromRow(
  row: Pick<JsonRow<CampaignsTable>, 'discount_type' | 'amount_minor' | 'percent_bp' | 'max_discount_minor'>,
): DiscountRule {
  switch (row.discount_type) {
    case 'fixed_amount':
      return { type: 'fixed_amount', amountMinor: row.amount_minor ?? 0 };
    case 'percentage':
      return {
        type: 'percentage',
        basisPoints: row.percent_bp ?? 0,
        maxDiscountMinor: row.max_discount_minor,
      };
    case 'free_shipping':
      return { type: 'free_shipping' };
  }
}

export function eligibilityFromJson(value: unknown): Eligibility {
  const e = (parseJsonResult<Record<string, unknown> | null>(value) ?? {}) as Record<string, unknown>;
  const list = (v: unknown): string[] | null => (Array.isArray(v) ? v.map(String) : null);
  return {
    customerIds: list(e.customer_ids),
    segments: list(e.segments),
    regions: list(e.regions),
    firstOrderOnly: e.first_order_only === true,
  };
}

export function plannedPeaksToJson(peaks: readonly PlannedPeak[]): string {
  return JSON.stringify(
    peaks.map((p) => ({
      starts_at: p.startsAt.toISOString(),
      ends_at: p.endsAt.toISOString(),
      expected_per_minute: p.expectedPerMinute,
    })) satisfies PlannedPeakJson[],
  );
}

export function eligibilityToJson(e: Eligibility): string {
  return JSON.stringify({
    customer_ids: e.customerIds,
    segments: e.segments,
    regions: e.regions,
    first_order_only: e.firstOrderOnly,
  });
}

export interface CampaignRecord extends Campaign {
  metadata: Record<string, string>;
  plannedPeaks: PlannedPeak[];
  createdAt: Date;
  updatedAt: Date;
}

export function campaignFromRow(row: JsonRow<CampaignsTable>): CampaignRecord {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    currency: row.currency,
    discount: discountFromRow(row),
    startsAt: toDate(row.starts_at),
    endsAt: toDateOrNull(row.ends_at),
    redemptionCap: row.redemption_cap,
    redemptionsUsed: row.redemptions_used,
    budgetMinor: row.budget_minor,
    spentMinor: row.spent_minor,
    perCustomerCap: row.per_customer_cap,
    perPersonCap: row.per_person_cap,
    throttlePerMinute: row.throttle_per_minute,
    minOrderMinor: row.min_order_minor,
    eligibility: eligibilityFromJson(row.eligibility),
    metadata: parseJsonResult<Record<string, string> | null>(row.metadata) ?? {},
    plannedPeaks: (parseJsonResult<PlannedPeakJson[] | null>(row.planned_peaks) ?? []).map((p) => ({
      startsAt: new Date(p.starts_at),
      endsAt: new Date(p.ends_at),
      expectedPerMinute: p.expected_per_minute,
    })),
    version: row.version,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export interface CodeRecord extends Code {
  batchId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

export function codeFromRow(row: JsonRow<CodesTable>): CodeRecord {
  return {
    id: row.id,
    campaignId: row.campaign_id,
    batchId: row.batch_id,
    code: row.code,
    normalized: row.normalized,
    kind: row.kind,
    maxUses: row.max_uses,
    uses: row.uses,
    customerId: row.customer_id,
    status: row.status,
    amountMinor: row.amount_minor,
    expiresAt: toDateOrNull(row.expires_at),
    partner: row.partner,
    createdAt: toDate(row.created_at),
    revokedAt: toDateOrNull(row.revoked_at),
  };
}

export interface Redemption {
  id: string;
  idempotencyKey: string;
  requestFingerprint: string;
  campaignId: string;
  codeId: string;
  customerId: string;
  orderId: string | null;
  currency: string;
  subtotalMinor: number;
  discountMinor: number;
  status: RedemptionStatus;
  createdAt: Date;
  rolledBackAt: Date | null;
  rollbackReason: string | null;
  /** Held for review (`pending`) and how the review ended; null when it was never held. */
  reviewStatus: ReviewStatus | null;
  reviewedAt: Date | null;
  decisionId: string | null;
  /** The analyst holding a pending case, while `reviewLockedUntil` is in the future. */
  reviewAssignedTo: string | null;
  reviewAssignedAt: Date | null;
  reviewLockedUntil: Date | null;
}

/** A redemption row without its stored context (the functions leave it out of what they return). */
export type RedemptionRow = Omit<JsonRow<RedemptionsTable>, 'context'>;

export function redemptionFromRow(row: RedemptionRow): Redemption {
  return {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    requestFingerprint: row.request_fingerprint,
    campaignId: row.campaign_id,
    codeId: row.code_id,
    customerId: row.customer_id,
    orderId: row.order_id,
    currency: row.currency,
    subtotalMinor: row.subtotal_minor,
    discountMinor: row.discount_minor,
    status: row.status,
    createdAt: toDate(row.created_at),
    rolledBackAt: toDateOrNull(row.rolled_back_at),
    rollbackReason: row.rollback_reason,
    reviewStatus: row.review_status ?? null,
    reviewedAt: toDateOrNull(row.reviewed_at ?? null),
    decisionId: row.decision_id ?? null,
    reviewAssignedTo: row.review_assigned_to ?? null,
    reviewAssignedAt: toDateOrNull(row.review_assigned_at ?? null),
    reviewLockedUntil: toDateOrNull(row.review_locked_until ?? null),
  };
}
