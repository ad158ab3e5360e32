import { describe, expect, it } from 'vitest';
import {
  CAMPAIGN_STATUSES,
  type Campaign,
  type CampaignStatus,
  type Cart,
  type Code,
  type CustomerFacts,
  canTransition,
  type DecisionInput,
  decide,
  type Eligibility,
  REFUSAL_REASONS,
  type RefusalReason,
} from '../../src/domain/campaign.js';

const STARTS_AT = new Date('2026-06-01T00:00:00.000Z');
const ENDS_AT = new Date('2026-07-01T00:00:00.000Z');
const NOW = new Date('2026-06-15T12:00:00.000Z');
const ms = (date: Date, delta: number) => new Date(date.getTime() + delta);

type CampaignOverrides = Partial<Omit<Campaign, 'eligibility'>> & { eligibility?: Partial<Eligibility> };

/** An active USD campaign, 10 % off, open from June to July, with no caps and no eligibility rules. */
function aCampaign(overrides: CampaignOverrides = {}): Campaign {
  const { eligibility, ...rest } = overrides;
  return {
    id: 'cmp_test',
    name: 'Summer',
    status: 'active',
    currency: 'USD',
    discount: { type: 'percentage', basisPoints: 1_000, maxDiscountMinor: null },
    startsAt: STARTS_AT,
    endsAt: ENDS_AT,
    redemptionCap: null,
    redemptionsUsed: 0,
    budgetMinor: null,
    spentMinor: 0,
    perCustomerCap: null,
    perPersonCap: null,
    throttlePerMinute: null,
    minOrderMinor: null,
    version: 1,
    ...rest,
    eligibility: { customerIds: null, segments: null, regions: null, firstOrderOnly: false, ...eligibility },
  };
}

/** An active public code of that campaign, unbound, unlimited, with no amount or expiry of its own. */
function aCode(overrides: Partial<Code> = {}): Code {
  return {
    id: 'code_test',
    campaignId: 'cmp_test',
    code: 'SUMMER25',
    normalized: 'SUMMER25',
    kind: 'public',
    maxUses: null,
    uses: 0,
    customerId: null,
    status: 'active',
    amountMinor: null,
    expiresAt: null,
    partner: null,
    ...overrides,
  };
}

interface InputOverrides {
  campaign?: CampaignOverrides;
  code?: Partial<Code>;
  customer?: Partial<CustomerFacts>;
  cart?: Partial<Cart>;
  now?: Date;
  customerUses?: number;
  personUses?: number;
  partnerCapReached?: boolean;
  throttled?: boolean;
}

/** A cart of 100.00 USD + 4.99 shipping, for customer cus_42, in the middle of the window. */
function anInput(overrides: InputOverrides = {}): DecisionInput {
  return {
    campaign: aCampaign(overrides.campaign),
    code: aCode(overrides.code),
    customer: { id: 'cus_42', ...overrides.customer },
    cart: { subtotalMinor: 10_000, shippingMinor: 499, currency: 'USD', ...overrides.cart },
    now: overrides.now ?? NOW,
    customerUses: overrides.customerUses ?? 0,
    personUses: overrides.personUses ?? 0,
    partnerCapReached: overrides.partnerCapReached ?? false,
    throttled: overrides.throttled ?? false,
  };
}

/** Two sets of overrides as one; where both set a field, `b` wins. */
function merge(a: InputOverrides, b: InputOverrides): InputOverrides {
  return {
    campaign: {
      ...a.campaign,
      ...b.campaign,
      eligibility: { ...a.campaign?.eligibility, ...b.campaign?.eligibility },
    },
    code: { ...a.code, ...b.code },
    customer: { ...a.customer, ...b.customer },
    cart: { ...a.cart, ...b.cart },
    now: b.now ?? a.now,
    customerUses: b.customerUses ?? a.customerUses,
    personUses: b.personUses ?? a.personUses,
    partnerCapReached: b.partnerCapReached ?? a.partnerCapReached,
    throttled: b.throttled ?? a.throttled,
  };
}

const reasonFor = (overrides: InputOverrides) => {
  const decision = decide(anInput(overrides));
  return decision.eligible ? 'eligible' : decision.reason;
};

const discountFor = (overrides: InputOverrides) => {
  const decision = decide(anInput(overrides));
  if (!decision.eligible) throw new Error(`expected eligible, refused with ${decision.reason}`);
  return decision.discountMinor;
};

/**
 * The order in which `decide` reports a refusal, each with the smallest change that causes it.
 * Static facts about the code and the campaign come first, then who the customer is, then the cart,
 * and the counters (which the redemption re-checks atomically) last.
 */
const REFUSAL_ORDER: ReadonlyArray<readonly [RefusalReason, InputOverrides]> = [
  ['code_revoked', { code: { status: 'revoked' } }],
  // Expired before any clock these cases use, so it also holds with the clock before the window.
  ['code_expired', { code: { expiresAt: new Date('2026-01-01T00:00:00.000Z') } }],
  ['campaign_not_active', { campaign: { status: 'draft' } }],
  ['campaign_paused', { campaign: { status: 'paused' } }],
  ['campaign_ended', { campaign: { status: 'ended' } }],
  ['campaign_not_started', { now: ms(STARTS_AT, -1) }],
  ['campaign_expired', { now: ENDS_AT }],
  ['code_bound_to_other_customer', { code: { customerId: 'cus_other' } }],
  ['customer_not_eligible', { campaign: { eligibility: { customerIds: ['cus_vip'] } } }],
  [
    'segment_not_eligible',
    { campaign: { eligibility: { segments: ['vip'] } }, customer: { segment: 'new' } },
  ],
  ['region_not_eligible', { campaign: { eligibility: { regions: ['EU'] } }, customer: { region: 'US' } }],
  [
    'not_first_order',
    { campaign: { eligibility: { firstOrderOnly: true } }, customer: { firstOrder: false } },
  ],
  ['currency_mismatch', { cart: { currency: 'EUR' } }],
  ['below_minimum_order', { campaign: { minOrderMinor: 10_001 } }],
  ['code_used_up', { code: { maxUses: 1, uses: 1 } }],
  ['campaign_cap_reached', { campaign: { redemptionCap: 10, redemptionsUsed: 10 } }],
  ['budget_exhausted', { campaign: { budgetMinor: 999 } }],
  ['customer_cap_reached', { campaign: { perCustomerCap: 1 }, customerUses: 1 }],
  ['person_cap_reached', { campaign: { perPersonCap: 1 }, personUses: 1 }],
  ['partner_cap_reached', { partnerCapReached: true }],
  ['campaign_throttled', { throttled: true }],
];

describe('decide: which refusal wins', () => {
  it('the baseline input is eligible for 10 % of the subtotal', () => {
    expect(decide(anInput())).toEqual({ eligible: true, discountMinor: 1_000 });
  });

  it.each(REFUSAL_ORDER)('%s on its own', (reason, cause) => {
    expect(reasonFor(cause)).toBe(reason);
  });

  it.each(REFUSAL_ORDER.map(([reason], index) => [reason, index] as const))(
    '%s wins over every refusal listed after it',
    (reason, index) => {
      // Apply the causes from the last up to this one, so this one's status or clock wins where two
      // causes set the same field.
      let overrides: InputOverrides = {};
      for (const [, cause] of REFUSAL_ORDER.slice(index).reverse()) overrides = merge(overrides, cause);
      expect(reasonFor(overrides)).toBe(reason);
    },
  );

  it('with every cause present, fixing them one at a time reports each reason in turn', () => {
    // Status and clock each hold one value, so this ladder walks draft and "not started";
    // the tests above cover paused, ended and expired.
    const ladder = REFUSAL_ORDER.filter(
      ([reason]) => !['campaign_paused', 'campaign_ended', 'campaign_expired'].includes(reason),
    );
    const seen: string[] = [];
    for (let fixed = 0; fixed <= ladder.length; fixed++) {
      let overrides: InputOverrides = {};
      for (const [, cause] of ladder.slice(fixed)) overrides = merge(overrides, cause);
      seen.push(reasonFor(overrides));
    }
    expect(seen).toEqual([...ladder.map(([reason]) => reason), 'eligible']);
  });

  it('can report every refusal reason except those decided outside it', () => {
    // code_not_found comes from the lookup (or the check symbol); blocked from the lists;
    // blocked_by_rule from the risk engine;
    // campaign_changed only from the redemption statement (which also re-checks every cap decide saw).
    const produced = new Set(REFUSAL_ORDER.map(([reason]) => reason));
    const notFromDecide = REFUSAL_REASONS.filter((reason) => !produced.has(reason));
    expect(notFromDecide.sort()).toEqual([
      'blocked',
      'blocked_by_rule',
      'campaign_changed',
      'code_not_found',
    ]);
  });
});

describe('decide: the campaign window [starts_at, ends_at)', () => {
  it('opens exactly at starts_at', () => {
    expect(reasonFor({ now: STARTS_AT })).toBe('eligible');
    expect(reasonFor({ now: ms(STARTS_AT, -1) })).toBe('campaign_not_started');
  });

  it('is still open 1 ms before ends_at and closed exactly at ends_at', () => {
    expect(reasonFor({ now: ms(ENDS_AT, -1) })).toBe('eligible');
    expect(reasonFor({ now: ENDS_AT })).toBe('campaign_expired');
    expect(reasonFor({ now: ms(ENDS_AT, 1) })).toBe('campaign_expired');
  });

  it('never closes without ends_at', () => {
    expect(reasonFor({ campaign: { endsAt: null }, now: new Date('2100-01-01T00:00:00Z') })).toBe('eligible');
  });
});

describe("decide: a code's own expiry", () => {
  const expiresAt = new Date('2026-06-20T00:00:00.000Z'); // inside the campaign window

  it('is usable 1 ms before its expiry and refused exactly at it', () => {
    expect(reasonFor({ code: { expiresAt }, now: ms(expiresAt, -1) })).toBe('eligible');
    expect(reasonFor({ code: { expiresAt }, now: expiresAt })).toBe('code_expired');
  });

  it('does not extend the campaign window', () => {
    const late = ms(ENDS_AT, 86_400_000);
    expect(reasonFor({ code: { expiresAt: late }, now: ms(ENDS_AT, -1) })).toBe('eligible');
    expect(reasonFor({ code: { expiresAt: late }, now: ENDS_AT })).toBe('campaign_expired');
  });
});

describe('decide: codes bound to a customer', () => {
  it('refuses a code bound to another customer', () => {
    expect(reasonFor({ code: { customerId: 'cus_7' }, customer: { id: 'cus_42' } })).toBe(
      'code_bound_to_other_customer',
    );
  });

  it('allows a code bound to the same customer', () => {
    expect(reasonFor({ code: { customerId: 'cus_42' }, customer: { id: 'cus_42' } })).toBe('eligible');
  });
});

describe('decide: eligibility', () => {
  it('with no lists, anyone is eligible, also without segment or region', () => {
    expect(reasonFor({ customer: { id: 'cus_anyone' } })).toBe('eligible');
  });

  it('admits only the listed customers', () => {
    const eligibility = { customerIds: ['cus_1', 'cus_42'] };
    expect(reasonFor({ campaign: { eligibility }, customer: { id: 'cus_42' } })).toBe('eligible');
    expect(reasonFor({ campaign: { eligibility }, customer: { id: 'cus_2' } })).toBe('customer_not_eligible');
    expect(reasonFor({ campaign: { eligibility: { customerIds: [] } } })).toBe('customer_not_eligible');
  });

  it('admits only the listed segments; a customer without a segment is not in any', () => {
    const eligibility = { segments: ['vip', 'staff'] };
    expect(reasonFor({ campaign: { eligibility }, customer: { segment: 'staff' } })).toBe('eligible');
    expect(reasonFor({ campaign: { eligibility }, customer: { segment: 'new' } })).toBe(
      'segment_not_eligible',
    );
    expect(reasonFor({ campaign: { eligibility } })).toBe('segment_not_eligible');
  });

  it('admits only the listed regions; a customer without a region is not in any', () => {
    const eligibility = { regions: ['EU', 'UK'] };
    expect(reasonFor({ campaign: { eligibility }, customer: { region: 'EU' } })).toBe('eligible');
    expect(reasonFor({ campaign: { eligibility }, customer: { region: 'US' } })).toBe('region_not_eligible');
    expect(reasonFor({ campaign: { eligibility } })).toBe('region_not_eligible');
  });

  it('first order only admits a customer only when the checkout asserts a first order', () => {
    const eligibility = { firstOrderOnly: true };
    expect(reasonFor({ campaign: { eligibility }, customer: { firstOrder: true } })).toBe('eligible');
    expect(reasonFor({ campaign: { eligibility }, customer: { firstOrder: false } })).toBe('not_first_order');
    expect(reasonFor({ campaign: { eligibility } })).toBe('not_first_order');
    expect(reasonFor({ customer: { firstOrder: false } })).toBe('eligible');
  });
});

describe('decide: the cart', () => {
  it('refuses a cart in another currency', () => {
    expect(reasonFor({ campaign: { currency: 'USD' }, cart: { currency: 'EUR' } })).toBe('currency_mismatch');
    expect(reasonFor({ campaign: { currency: 'EUR' }, cart: { currency: 'EUR' } })).toBe('eligible');
  });

  it('allows a subtotal exactly at the minimum order and refuses one unit below', () => {
    expect(reasonFor({ campaign: { minOrderMinor: 3_000 }, cart: { subtotalMinor: 3_000 } })).toBe(
      'eligible',
    );
    expect(reasonFor({ campaign: { minOrderMinor: 3_000 }, cart: { subtotalMinor: 2_999 } })).toBe(
      'below_minimum_order',
    );
  });

  it('compares the minimum with the subtotal, not with subtotal plus shipping', () => {
    expect(
      reasonFor({ campaign: { minOrderMinor: 3_000 }, cart: { subtotalMinor: 2_999, shippingMinor: 1_000 } }),
    ).toBe('below_minimum_order');
  });
});

describe('decide: caps and budget', () => {
  it('allows the last use of a code and refuses the one after', () => {
    expect(reasonFor({ code: { maxUses: 3, uses: 2 } })).toBe('eligible');
    expect(reasonFor({ code: { maxUses: 3, uses: 3 } })).toBe('code_used_up');
    expect(reasonFor({ code: { maxUses: null, uses: 1_000_000 } })).toBe('eligible');
  });

  it('allows the last redemption under the campaign cap and refuses the one after', () => {
    expect(reasonFor({ campaign: { redemptionCap: 50, redemptionsUsed: 49 } })).toBe('eligible');
    expect(reasonFor({ campaign: { redemptionCap: 50, redemptionsUsed: 50 } })).toBe('campaign_cap_reached');
  });

  it('allows a discount the remaining budget covers exactly and refuses it one unit short', () => {
    // 10 % of 100.00 = 10.00 off
    expect(decide(anInput({ campaign: { budgetMinor: 50_000, spentMinor: 49_000 } }))).toEqual({
      eligible: true,
      discountMinor: 1_000,
    });
    expect(reasonFor({ campaign: { budgetMinor: 50_000, spentMinor: 49_001 } })).toBe('budget_exhausted');
    expect(reasonFor({ campaign: { budgetMinor: 999, spentMinor: 0 } })).toBe('budget_exhausted');
  });

  it('measures the budget against the discount this cart would get', () => {
    // 10 % of 50.00 = 5.00 fits in the 5.00 left; 10 % of 50.10 = 5.01 does not.
    const campaign = { budgetMinor: 10_000, spentMinor: 9_500 };
    expect(reasonFor({ campaign, cart: { subtotalMinor: 5_000 } })).toBe('eligible');
    expect(reasonFor({ campaign, cart: { subtotalMinor: 5_010 } })).toBe('budget_exhausted');
  });

  it("allows a customer's last use under the per-customer cap and refuses the one after", () => {
    expect(reasonFor({ campaign: { perCustomerCap: 2 }, customerUses: 1 })).toBe('eligible');
    expect(reasonFor({ campaign: { perCustomerCap: 2 }, customerUses: 2 })).toBe('customer_cap_reached');
  });
});

describe('decide: the discount', () => {
  it('gives the README example: 15 % of 80.00 with at most 20.00 off is 12.00', () => {
    const campaign = {
      discount: { type: 'percentage', basisPoints: 1_500, maxDiscountMinor: 2_000 },
      minOrderMinor: 3_000,
    } as const;
    expect(discountFor({ campaign, cart: { subtotalMinor: 8_000 } })).toBe(1_200);
    expect(discountFor({ campaign, cart: { subtotalMinor: 50_000 } })).toBe(2_000);
  });

  it('gives exactly the shipping for a free-shipping campaign', () => {
    expect(
      discountFor({ campaign: { discount: { type: 'free_shipping' } }, cart: { shippingMinor: 699 } }),
    ).toBe(699);
  });

  it("uses a code's own amount instead of the campaign's discount", () => {
    expect(discountFor({ code: { amountMinor: 250 } })).toBe(250); // not 10 % = 1000
    expect(
      discountFor({
        campaign: { discount: { type: 'fixed_amount', amountMinor: 500 } },
        code: { amountMinor: 1_500 },
      }),
    ).toBe(1_500);
    expect(
      discountFor({ campaign: { discount: { type: 'free_shipping' } }, code: { amountMinor: 300 } }),
    ).toBe(300);
  });

  it("caps a code's own amount at the subtotal", () => {
    expect(discountFor({ code: { amountMinor: 20_000 }, cart: { subtotalMinor: 12_345 } })).toBe(12_345);
  });

  it("checks the budget against the code's own amount", () => {
    expect(reasonFor({ code: { amountMinor: 250 }, campaign: { budgetMinor: 250 } })).toBe('eligible');
    expect(reasonFor({ code: { amountMinor: 251 }, campaign: { budgetMinor: 250 } })).toBe(
      'budget_exhausted',
    );
  });
});

describe('canTransition', () => {
  // draft -> active <-> paused, any of them -> ended; ended is final; staying put is a no-op.
  const ALLOWED: Record<CampaignStatus, readonly CampaignStatus[]> = {
    draft: ['draft', 'active', 'ended'],
    active: ['active', 'paused', 'ended'],
    paused: ['paused', 'active', 'ended'],
    ended: ['ended'],
  };
  const pairs = CAMPAIGN_STATUSES.flatMap((from) =>
    CAMPAIGN_STATUSES.map((to) => [from, to, ALLOWED[from].includes(to)] as const),
  );

  it('covers all 16 pairs', () => {
    expect(pairs).toHaveLength(16);
  });

  it.each(pairs)('%s -> %s is %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });
});
