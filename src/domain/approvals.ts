/**
 * Two-person approval: which rules of the configured policy a campaign change trips. Pure: the caller
 * passes the campaign as it stands (null when it is being created) and as the change would leave it.
 *
 * Only live campaigns (active or paused) spend money, so only a change that leaves a campaign live is
 * judged; a draft may hold any terms. A live campaign's terms were already judged when it went live
 * (or predate the policy), so a rule trips when the change makes the campaign newly risky under it or
 * riskier than it already was — never merely because it stays as risky as it was. Paused counts as live:
 * otherwise terms raised while paused would go live on a resume that nobody judged.
 */
import type { CampaignStatus } from './campaign.js';
import type { DiscountRule } from './money.js';

export const APPROVAL_RULES = [
  /** A percentage discount at or above the threshold. */
  'percentage_at_least',
  /** A fixed amount off at or above the threshold. */
  'fixed_amount_at_least',
  /** Neither a redemption cap nor a budget: nothing bounds what it can give away. */
  'uncapped',
  /** A budget above the threshold. */
  'budget_above',
  /** A live campaign's redemption cap raised by more than the factor, or removed. */
  'cap_raised',
  /** A live campaign's budget raised by more than the factor, or removed. */
  'budget_raised',
] as const;
export type ApprovalRule = (typeof APPROVAL_RULES)[number];

export interface ApprovalPolicy {
  enabled: boolean;
  /** Basis points; null = the rule is off. */
  percentBpAtLeast: number | null;
  fixedAmountAtLeastMinor: number | null;
  uncapped: boolean;
  budgetAboveMinor: number | null;
  /** A raise to more than `factor` × the old value needs approval; null = the rule is off. */
  raiseFactor: number | null;
}

/** The terms of a campaign the policy reads. */
export interface GuardedTerms {
  status: CampaignStatus;
  discount: DiscountRule;
  redemptionCap: number | null;
  budgetMinor: number | null;
}

const isLive = (status: CampaignStatus) => status === 'active' || status === 'paused';

/** "Above X" in whole minor units is "at least X + 1". */
const nextAbove = (above: number | null) => (above === null ? null : above + 1);

/**
 * At or above `threshold` now, and not already so while live at a value at least as high (a live
 * 60 % campaign may be renamed, but raising it to 80 % is judged again).
 */
function reachesThreshold(after: number | null, prior: number | null, threshold: number | null): boolean {
  if (threshold === null || after === null || after < threshold) return false;
  return prior === null || prior < threshold || after > prior;
}

/** A bound raised past `factor` × its live value, or removed (an unbounded raise). */
function raisedPast(after: number | null, prior: number | null, factor: number | null): boolean {
  if (factor === null || prior === null) return false;
  return after === null || after > prior * factor;
}

/** The rules `after` trips, in APPROVAL_RULES order; empty when the change needs no approval. */
export function approvalRulesTripped(
  policy: ApprovalPolicy,
  before: GuardedTerms | null,
  after: GuardedTerms,
): ApprovalRule[] {
  if (!policy.enabled || !isLive(after.status)) return [];
  // What was already live, and so already judged; a draft's terms were never judged.
  const prior = before !== null && isLive(before.status) ? before : null;
  const tripped: ApprovalRule[] = [];

  const priorOf = (read: (t: GuardedTerms) => number | null) => (prior ? read(prior) : null);
  const percent = (t: GuardedTerms) => (t.discount.type === 'percentage' ? t.discount.basisPoints : null);
  const fixed = (t: GuardedTerms) => (t.discount.type === 'fixed_amount' ? t.discount.amountMinor : null);
  if (reachesThreshold(percent(after), priorOf(percent), policy.percentBpAtLeast)) {
    tripped.push('percentage_at_least');
  }
  if (reachesThreshold(fixed(after), priorOf(fixed), policy.fixedAmountAtLeastMinor)) {
    tripped.push('fixed_amount_at_least');
  }
  const unbounded = (t: GuardedTerms) => t.redemptionCap === null && t.budgetMinor === null;
  if (policy.uncapped && unbounded(after) && !(prior && unbounded(prior))) tripped.push('uncapped');
  if (reachesThreshold(after.budgetMinor, prior?.budgetMinor ?? null, nextAbove(policy.budgetAboveMinor))) {
    tripped.push('budget_above');
  }
  if (prior) {
    if (raisedPast(after.redemptionCap, prior.redemptionCap, policy.raiseFactor)) tripped.push('cap_raised');
    if (raisedPast(after.budgetMinor, prior.budgetMinor, policy.raiseFactor)) tripped.push('budget_raised');
  }
  return tripped;
}
