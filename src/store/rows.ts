/**
 * Row -> domain mapping. Rows arrive either from Kysely (timestamps as Date) or as jsonb built by the
 * redemption functions (timestamps as ISO strings), so every mapper accepts both.
 */
import type {
  Campaign,
  CampaignStatus,
  Code,
  CodeKind,
  CodeStatus,
  Eligibility,
} from '../domain/campaign.js';
import type { DiscountRule } from '../domain/money.js';

export type Row = Record<string, unknown>;

export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'string' || typeof value === 'number') return new Date(value);
  throw new TypeError(`not a timestamp: ${String(value)}`);
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

export function toNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n)) throw new TypeError(`not a number: ${String(value)}`);
  return n;
}

export function toNumberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : toNumber(value);
}

/** A jsonb result of one of the database functions: an object, or its text on drivers that return text. */
export function parseJsonResult(value: unknown): Row {
  return parseJson(value) as Row;
}

function parseJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

export function discountFromRow(row: Row): DiscountRule {
  switch (row.discount_type) {
    case 'fixed_amount':
      return { type: 'fixed_amount', amountMinor: toNumber(row.amount_minor) };
    case 'percentage':
      return {
        type: 'percentage',
        basisPoints: toNumber(row.percent_bp),
        maxDiscountMinor: toNumberOrNull(row.max_discount_minor),
      };
    case 'free_shipping':
      return { type: 'free_shipping' };
    default:
      throw new TypeError(`unknown discount type ${String(row.discount_type)}`);
  }
}

export function eligibilityFromJson(value: unknown): Eligibility {
  const e = (parseJson(value) ?? {}) as Record<string, unknown>;
  const list = (v: unknown): string[] | null => (Array.isArray(v) ? v.map(String) : null);
  return {
    customerIds: list(e.customer_ids),
    segments: list(e.segments),
    regions: list(e.regions),
    firstOrderOnly: e.first_order_only === true,
  };
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
  createdAt: Date;
  updatedAt: Date;
}

export function campaignFromRow(row: Row): CampaignRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    status: row.status as CampaignStatus,
    currency: String(row.currency),
    discount: discountFromRow(row),
    startsAt: toDate(row.starts_at),
    endsAt: toDateOrNull(row.ends_at),
    redemptionCap: toNumberOrNull(row.redemption_cap),
    redemptionsUsed: toNumber(row.redemptions_used),
    budgetMinor: toNumberOrNull(row.budget_minor),
    spentMinor: toNumber(row.spent_minor),
    perCustomerCap: toNumberOrNull(row.per_customer_cap),
    perPersonCap: toNumberOrNull(row.per_person_cap),
    throttlePerMinute: toNumberOrNull(row.throttle_per_minute),
    minOrderMinor: toNumberOrNull(row.min_order_minor),
    eligibility: eligibilityFromJson(row.eligibility),
    metadata: (parseJson(row.metadata) ?? {}) as Record<string, string>,
    version: toNumber(row.version),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export interface CodeRecord extends Code {
  batchId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

export function codeFromRow(row: Row): CodeRecord {
  return {
    id: String(row.id),
    campaignId: String(row.campaign_id),
    batchId: row.batch_id === null || row.batch_id === undefined ? null : String(row.batch_id),
    code: String(row.code),
    normalized: String(row.normalized),
    kind: row.kind as CodeKind,
    maxUses: toNumberOrNull(row.max_uses),
    uses: toNumber(row.uses),
    customerId: row.customer_id === null || row.customer_id === undefined ? null : String(row.customer_id),
    status: row.status as CodeStatus,
    amountMinor: toNumberOrNull(row.amount_minor),
    expiresAt: toDateOrNull(row.expires_at),
    partner: row.partner === null || row.partner === undefined ? null : String(row.partner),
    createdAt: toDate(row.created_at),
    revokedAt: toDateOrNull(row.revoked_at),
  };
}

export type RedemptionStatus = 'redeemed' | 'rolled_back';
export type ReviewStatus = 'pending' | 'approved' | 'rejected';

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
}

const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function redemptionFromRow(row: Row): Redemption {
  return {
    id: String(row.id),
    idempotencyKey: String(row.idempotency_key),
    requestFingerprint: String(row.request_fingerprint),
    campaignId: String(row.campaign_id),
    codeId: String(row.code_id),
    customerId: String(row.customer_id),
    orderId: row.order_id === null || row.order_id === undefined ? null : String(row.order_id),
    currency: String(row.currency),
    subtotalMinor: toNumber(row.subtotal_minor),
    discountMinor: toNumber(row.discount_minor),
    status: row.status as RedemptionStatus,
    createdAt: toDate(row.created_at),
    rolledBackAt: toDateOrNull(row.rolled_back_at),
    rollbackReason: textOrNull(row.rollback_reason),
    reviewStatus: textOrNull(row.review_status) as ReviewStatus | null,
    reviewedAt: toDateOrNull(row.reviewed_at),
    decisionId: textOrNull(row.decision_id),
  };
}
