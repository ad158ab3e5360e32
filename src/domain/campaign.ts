/**
 * Campaigns and codes as the domain sees them, and the pure decision whether a code may be used for a
 * cart. No I/O: the caller passes the current time and the stored counters. The decision here is what
 * a validation reports; a redemption re-checks every cap and the status atomically in the database,
 * because counters read here may be stale by the time the redemption commits.
 */
import { type DiscountRule, discountFor } from './money.js';

export const CAMPAIGN_STATUSES = ['draft', 'active', 'paused', 'ended'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

/** draft -> active -> paused <-> active -> ended; ended is final. */
const TRANSITIONS: Record<CampaignStatus, readonly CampaignStatus[]> = {
  draft: ['active', 'ended'],
  active: ['paused', 'ended'],
  paused: ['active', 'ended'],
  ended: [],
};

export function canTransition(from: CampaignStatus, to: CampaignStatus): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

export interface Eligibility {
  /** Only these customers may use the campaign's codes; null = anyone. */
  customerIds: string[] | null;
  segments: string[] | null;
  regions: string[] | null;
  firstOrderOnly: boolean;
}

export interface Campaign {
  id: string;
  name: string;
  status: CampaignStatus;
  currency: string;
  discount: DiscountRule;
  /** The window is [startsAt, endsAt): open at startsAt, closed at endsAt. */
  startsAt: Date;
  endsAt: Date | null;
  redemptionCap: number | null;
  redemptionsUsed: number;
  budgetMinor: number | null;
  spentMinor: number;
  perCustomerCap: number | null;
  /** Redemptions per person: customers linked by shared identifiers count as one. */
  perPersonCap: number | null;
  /** At most this many redemptions in any one UTC minute (a throttle, not a cap). */
  throttlePerMinute: number | null;
  minOrderMinor: number | null;
  eligibility: Eligibility;
  version: number;
}

/**
 * A period a campaign expects to redeem fast (a flash sale, a newsletter send), declared ahead so that
 * spike alerts and detectors read its rate as planned, not as a leak: [startsAt, endsAt).
 */
export interface PlannedPeak {
  startsAt: Date;
  endsAt: Date;
  /** The redemptions per minute the campaign expects at the peak. */
  expectedPerMinute: number;
}

/** The planned peak in force at `now`, if any. */
export function plannedPeakAt(peaks: readonly PlannedPeak[], now: Date): PlannedPeak | null {
  const t = now.getTime();
  return peaks.find((p) => p.startsAt.getTime() <= t && t < p.endsAt.getTime()) ?? null;
}

/** Redemptions per hour expected by the planned peaks that overlap the hour up to `now` (0: none). */
export function plannedPerHour(peaks: readonly PlannedPeak[], now: Date): number {
  const t = now.getTime();
  let most = 0;
  for (const p of peaks) {
    if (p.startsAt.getTime() <= t && p.endsAt.getTime() > t - 3_600_000) {
      most = Math.max(most, Math.round(p.expectedPerMinute * 60));
    }
  }
  return most;
}

export type CodeKind = 'public' | 'unique';
export type CodeStatus = 'active' | 'revoked';

export interface Code {
  id: string;
  campaignId: string;
  code: string;
  normalized: string;
  kind: CodeKind;
  /** null = limited only by the campaign's caps (a public code). */
  maxUses: number | null;
  uses: number;
  customerId: string | null;
  status: CodeStatus;
  /** A code-level amount that replaces the campaign's fixed amount (loyalty coupons carry their own). */
  amountMinor: number | null;
  /** A code-level end of validity (loyalty coupons); the campaign's window applies as well. */
  expiresAt: Date | null;
  /** The partner channel the code was issued to, if any (revocable and cappable per partner). */
  partner: string | null;
}

export interface CustomerFacts {
  id: string;
  segment?: string | undefined;
  region?: string | undefined;
  /** Asserted by the trusted checkout backend: this is the customer's first order. */
  firstOrder?: boolean | undefined;
}

export interface Cart {
  subtotalMinor: number;
  shippingMinor: number;
  currency: string;
}

/** Why a code cannot be used; a closed list that trusted callers see and analysts filter on. */
export const REFUSAL_REASONS = [
  'code_not_found',
  'code_revoked',
  'code_expired',
  'code_used_up',
  'code_bound_to_other_customer',
  'campaign_not_active',
  'campaign_paused',
  'campaign_ended',
  'campaign_not_started',
  'campaign_expired',
  'customer_not_eligible',
  'segment_not_eligible',
  'region_not_eligible',
  'not_first_order',
  'currency_mismatch',
  'below_minimum_order',
  'campaign_cap_reached',
  'budget_exhausted',
  'customer_cap_reached',
  'person_cap_reached',
  'partner_cap_reached',
  'campaign_throttled',
  'blocked',
  'blocked_by_rule',
  'campaign_changed',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * The refusals the atomic redeem statement itself can return (sql/functions/redeem.sql): every cap,
 * the code's state and the campaign's status and window, re-checked under row locks because what a
 * validation read may be stale. test/store/sql-functions.test.ts holds this list equal to the SQL's.
 */
export const ATOMIC_REFUSALS = [
  'person_cap_reached',
  'customer_cap_reached',
  'partner_cap_reached',
  'code_revoked',
  'code_expired',
  'code_used_up',
  'campaign_paused',
  'campaign_ended',
  'campaign_not_active',
  'campaign_changed',
  'campaign_not_started',
  'campaign_expired',
  'campaign_cap_reached',
  'budget_exhausted',
  'campaign_throttled',
] as const satisfies readonly RefusalReason[];
export type AtomicRefusal = (typeof ATOMIC_REFUSALS)[number];

export type Decision = { eligible: true; discountMinor: number } | { eligible: false; reason: RefusalReason };

export interface DecisionInput {
  campaign: Campaign;
  code: Code;
  customer: CustomerFacts;
  cart: Cart;
  now: Date;
  /** Redemptions this customer already holds in the campaign (for the per-customer cap). */
  customerUses: number;
  /** Redemptions held by the person(s) this request's customer and identifiers belong to. */
  personUses?: number | undefined;
  /** The code's partner channel has used up its cap. */
  partnerCapReached?: boolean | undefined;
  /** The campaign's per-minute throttle is used up for the current minute. */
  throttled?: boolean | undefined;
}

export function effectiveDiscountRule(campaign: Campaign, code: Code): DiscountRule {
  if (code.amountMinor !== null) return { type: 'fixed_amount', amountMinor: code.amountMinor };
  return campaign.discount;
}

export function decide(input: DecisionInput): Decision {
  const { campaign, code, customer, cart, now } = input;
  const refuse = (reason: RefusalReason): Decision => ({ eligible: false, reason });

  if (code.status === 'revoked') return refuse('code_revoked');
  if (code.expiresAt !== null && now.getTime() >= code.expiresAt.getTime()) return refuse('code_expired');
  if (campaign.status === 'draft') return refuse('campaign_not_active');
  if (campaign.status === 'paused') return refuse('campaign_paused');
  if (campaign.status === 'ended') return refuse('campaign_ended');
  if (now.getTime() < campaign.startsAt.getTime()) return refuse('campaign_not_started');
  if (campaign.endsAt !== null && now.getTime() >= campaign.endsAt.getTime())
    return refuse('campaign_expired');
  if (code.customerId !== null && code.customerId !== customer.id)
    return refuse('code_bound_to_other_customer');

  const rules = campaign.eligibility;
  if (rules.customerIds !== null && !rules.customerIds.includes(customer.id))
    return refuse('customer_not_eligible');
  if (
    rules.segments !== null &&
    (customer.segment === undefined || !rules.segments.includes(customer.segment))
  ) {
    return refuse('segment_not_eligible');
  }
  if (rules.regions !== null && (customer.region === undefined || !rules.regions.includes(customer.region))) {
    return refuse('region_not_eligible');
  }
  if (rules.firstOrderOnly && customer.firstOrder !== true) return refuse('not_first_order');
  if (cart.currency !== campaign.currency) return refuse('currency_mismatch');
  if (campaign.minOrderMinor !== null && cart.subtotalMinor < campaign.minOrderMinor) {
    return refuse('below_minimum_order');
  }

  if (code.maxUses !== null && code.uses >= code.maxUses) return refuse('code_used_up');
  if (campaign.redemptionCap !== null && campaign.redemptionsUsed >= campaign.redemptionCap) {
    return refuse('campaign_cap_reached');
  }
  const discountMinor = discountFor(effectiveDiscountRule(campaign, code), cart);
  if (campaign.budgetMinor !== null && campaign.spentMinor + discountMinor > campaign.budgetMinor) {
    return refuse('budget_exhausted');
  }
  if (campaign.perCustomerCap !== null && input.customerUses >= campaign.perCustomerCap) {
    return refuse('customer_cap_reached');
  }
  if (campaign.perPersonCap !== null && (input.personUses ?? 0) >= campaign.perPersonCap) {
    return refuse('person_cap_reached');
  }
  if (input.partnerCapReached === true) return refuse('partner_cap_reached');
  if (input.throttled === true) return refuse('campaign_throttled');
  return { eligible: true, discountMinor };
}
