/**
 * The two-person approval policy as a pure function: which rules a campaign change trips. No I/O.
 */
import { describe, expect, it } from 'vitest';
import { type ApprovalPolicy, approvalRulesTripped, type GuardedTerms } from '../../src/domain/approvals.js';

const POLICY: ApprovalPolicy = {
  enabled: true,
  percentBpAtLeast: 5_000,
  fixedAmountAtLeastMinor: 10_000,
  uncapped: true,
  budgetAboveMinor: 10_000_000,
  raiseFactor: 10,
};

/** A campaign that trips nothing: 15 % off, capped, a small budget, live. */
const SAFE: GuardedTerms = {
  status: 'active',
  discount: { type: 'percentage', basisPoints: 1_500, maxDiscountMinor: 2_000 },
  redemptionCap: 50,
  budgetMinor: 50_000,
};

const terms = (overrides: Partial<GuardedTerms>): GuardedTerms => ({ ...SAFE, ...overrides });
const tripped = (before: GuardedTerms | null, after: GuardedTerms, policy: Partial<ApprovalPolicy> = {}) =>
  approvalRulesTripped({ ...POLICY, ...policy }, before, after);

describe('approval policy', () => {
  it('lets a capped, budgeted, modest campaign go live alone (the README tour)', () => {
    expect(tripped(null, SAFE)).toEqual([]);
    expect(tripped(terms({ status: 'draft' }), SAFE)).toEqual([]);
  });

  it('flags going live with a percentage at or above the threshold, not below it', () => {
    const at = terms({ discount: { type: 'percentage', basisPoints: 5_000, maxDiscountMinor: null } });
    expect(tripped(null, at)).toEqual(['percentage_at_least']);
    expect(tripped(terms({ status: 'draft' }), at)).toEqual(['percentage_at_least']);
    const below = terms({ discount: { type: 'percentage', basisPoints: 4_999, maxDiscountMinor: null } });
    expect(tripped(null, below)).toEqual([]);
  });

  it('flags a fixed amount at or above its threshold only when that rule is configured', () => {
    const big = terms({ discount: { type: 'fixed_amount', amountMinor: 10_000 } });
    expect(tripped(null, big)).toEqual(['fixed_amount_at_least']);
    expect(tripped(null, terms({ discount: { type: 'fixed_amount', amountMinor: 9_999 } }))).toEqual([]);
    expect(tripped(null, big, { fixedAmountAtLeastMinor: null })).toEqual([]);
  });

  it('flags a campaign with neither a cap nor a budget; either one bounds it', () => {
    expect(tripped(null, terms({ redemptionCap: null, budgetMinor: null }))).toEqual(['uncapped']);
    expect(tripped(null, terms({ redemptionCap: null }))).toEqual([]);
    expect(tripped(null, terms({ budgetMinor: null }))).toEqual([]);
    expect(tripped(null, terms({ redemptionCap: null, budgetMinor: null }), { uncapped: false })).toEqual([]);
  });

  it('flags a budget above the threshold, not one equal to it', () => {
    expect(tripped(null, terms({ budgetMinor: 10_000_001 }))).toEqual(['budget_above']);
    expect(tripped(null, terms({ budgetMinor: 10_000_000 }))).toEqual([]);
  });

  it('flags raising a live campaign’s cap or budget past the factor, or removing it', () => {
    expect(tripped(SAFE, terms({ redemptionCap: 500 }))).toEqual([]);
    expect(tripped(SAFE, terms({ redemptionCap: 501 }))).toEqual(['cap_raised']);
    expect(tripped(SAFE, terms({ budgetMinor: 500_001 }))).toEqual(['budget_raised']);
    expect(tripped(SAFE, terms({ redemptionCap: null }))).toEqual(['cap_raised']);
    expect(tripped(SAFE, terms({ redemptionCap: null, budgetMinor: null }))).toEqual([
      'uncapped',
      'cap_raised',
      'budget_raised',
    ]);
    // A paused campaign is live too: its terms go live again on resume.
    const paused = terms({ status: 'paused' });
    expect(tripped(paused, terms({ status: 'paused', redemptionCap: 501 }))).toEqual(['cap_raised']);
    // A draft was never live: raising its cap is judged when it goes live, by the thresholds.
    expect(tripped(terms({ status: 'draft' }), terms({ redemptionCap: 100_000 }))).toEqual([]);
    expect(tripped(SAFE, terms({ redemptionCap: 100_000 }), { raiseFactor: null })).toEqual([]);
  });

  it('never flags a draft or an ended campaign, and nothing at all when approvals are off', () => {
    const risky = terms({ redemptionCap: null, budgetMinor: null });
    expect(tripped(null, { ...risky, status: 'draft' })).toEqual([]);
    expect(tripped(SAFE, { ...risky, status: 'ended' })).toEqual([]);
    expect(tripped(null, risky, { enabled: false })).toEqual([]);
  });

  it('does not re-flag a live campaign that stays as risky as it already was (a rename, a pause, a resume)', () => {
    const risky = terms({
      discount: { type: 'percentage', basisPoints: 6_000, maxDiscountMinor: null },
      redemptionCap: null,
      budgetMinor: null,
    });
    expect(tripped(risky, risky)).toEqual([]);
    expect(tripped(risky, { ...risky, status: 'paused' })).toEqual([]);
    expect(tripped({ ...risky, status: 'paused' }, risky)).toEqual([]);
    // Less risky is fine; more risky is judged again.
    const lower = {
      ...risky,
      discount: { type: 'percentage' as const, basisPoints: 5_500, maxDiscountMinor: null },
    };
    expect(tripped(risky, lower)).toEqual([]);
    const higher = {
      ...risky,
      discount: { type: 'percentage' as const, basisPoints: 8_000, maxDiscountMinor: null },
    };
    expect(tripped(risky, higher)).toEqual(['percentage_at_least']);
  });

  it('flags terms made risky while paused when they are changed, so resuming needs no second key', () => {
    const paused = terms({ status: 'paused' });
    const raised = terms({
      status: 'paused',
      discount: { type: 'percentage', basisPoints: 9_000, maxDiscountMinor: null },
    });
    expect(tripped(paused, raised)).toEqual(['percentage_at_least']);
    expect(tripped(raised, { ...raised, status: 'active' })).toEqual([]);
  });

  it('flags a draft going live with risky terms even though they were set while it was a draft', () => {
    const draft = terms({ status: 'draft', redemptionCap: null, budgetMinor: null });
    expect(tripped(draft, { ...draft, status: 'active' })).toEqual(['uncapped']);
  });
});
