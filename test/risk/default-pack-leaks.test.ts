/**
 * The shipped rules against leaks and rings, over the feature values the cases produce: a leaked code
 * farmed by new accounts past a handful is held while a declared flash sale is not; a referral code
 * redeemed by a second fresh account is held while an established customer's is not; a partner
 * spending a tenth of its cap within the hour is held; a guesser is challenged, a NAT's subscribers are not.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PACK } from '../../src/risk/default-pack.js';
import { compileRule, type DecisionInputs, toActivation } from '../../src/risk/rule-language.js';

function fires(
  id: string,
  features: Record<string, number>,
  code: DecisionInputs['code'] = { kind: 'public' },
) {
  const rule = DEFAULT_PACK.find((r) => r.id === id);
  if (!rule) throw new Error(`no rule ${id}`);
  const compiled = compileRule(rule.expression);
  if (!compiled.ok) throw new Error(compiled.message);
  return compiled.rule.evaluate(toActivation({ features, code }));
}

describe('new-account flood (default pack)', () => {
  const flood = (f: Record<string, number>) =>
    fires('rule_default_new_account_flood', {
      account_age_hours: 0.5,
      campaign_new_accounts_1h: 0,
      campaign_planned_per_hour: 0,
      ...f,
    });

  it('holds a new account once five new accounts redeemed the campaign within the hour', () => {
    expect(flood({ campaign_new_accounts_1h: 4 })).toBe(false);
    expect(flood({ campaign_new_accounts_1h: 5 })).toBe(true);
  });

  it('leaves established customers and accounts of unknown age alone', () => {
    expect(flood({ campaign_new_accounts_1h: 50, account_age_hours: 24 * 40 })).toBe(false);
    expect(
      fires('rule_default_new_account_flood', { campaign_new_accounts_1h: 50, campaign_planned_per_hour: 0 }),
    ).toBe(false);
  });

  it("expects a declared flash sale's sign-ups, and still holds a flood beyond its plan", () => {
    expect(flood({ campaign_new_accounts_1h: 150, campaign_planned_per_hour: 240 })).toBe(false);
    expect(flood({ campaign_new_accounts_1h: 300, campaign_planned_per_hour: 240 })).toBe(true);
  });
});

describe('referral ring (default pack)', () => {
  const unique = { kind: 'unique', bound: false, max_uses: 20 } as const;
  const ring = (f: Record<string, number>, code: DecisionInputs['code'] = unique) =>
    fires('rule_default_referral_ring', { account_age_hours: 2, code_new_accounts_24h: 0, ...f }, code);

  it('lets the first fresh account redeem a referral code and holds the next fresh one the same day', () => {
    expect(ring({ code_new_accounts_24h: 0 })).toBe(false);
    expect(ring({ code_new_accounts_24h: 1 })).toBe(true);
  });

  it('does not hold an established customer, nor anyone on a public code', () => {
    expect(ring({ code_new_accounts_24h: 3, account_age_hours: 24 * 200 })).toBe(false);
    expect(ring({ code_new_accounts_24h: 3 }, { kind: 'public' })).toBe(false);
  });
});

describe('partner spending its cap (default pack)', () => {
  const burn = (f: Record<string, number>) =>
    fires(
      'rule_default_partner_burn',
      { partner_redemptions_1h: 0, ...f },
      { kind: 'unique', partner: 'acme' },
    );

  it('holds once a tenth of the cap was redeemed within the hour', () => {
    expect(burn({ partner_cap: 40, partner_redemptions_1h: 3 })).toBe(false);
    expect(burn({ partner_cap: 40, partner_redemptions_1h: 4 })).toBe(true);
    expect(burn({ partner_cap: 10_000, partner_redemptions_1h: 200 })).toBe(false);
  });

  it('does nothing for a partner without a cap, or one paused to a cap of 0 (the cap refuses there)', () => {
    expect(burn({ partner_redemptions_1h: 500 })).toBe(false);
    expect(burn({ partner_cap: 0, partner_redemptions_1h: 5 })).toBe(false);
  });
});

describe('guessing from an address (default pack)', () => {
  const guessing = (f: Record<string, number>) => fires('rule_default_guessing_address', f);
  const established = { account_age_hours: 24 * 400 };

  it('challenges a guesser on its own address, and a fresh or unknown account on a guessed-from address', () => {
    expect(guessing({ ...established, ip_failed_attempts_1h: 15, ip_customers_1h: 1 })).toBe(true);
    expect(guessing({ ...established, ip_failed_attempts_1h: 40, ip_customers_1h: 4 })).toBe(true);
    // A sprayer opening an account for every guess: as many accounts as failures.
    expect(guessing({ account_age_hours: 0.2, ip_failed_attempts_1h: 15, ip_customers_1h: 15 })).toBe(true);
    expect(guessing({ ip_failed_attempts_1h: 15, ip_customers_1h: 15 })).toBe(true);
  });

  it("spares a carrier NAT's established subscribers the failures they share", () => {
    expect(guessing({ ...established, ip_failed_attempts_1h: 20, ip_customers_1h: 23 })).toBe(false);
    expect(guessing({ ...established, ip_failed_attempts_1h: 14, ip_customers_1h: 1 })).toBe(false);
  });

  it('challenges a fresh account after a few failures on an address only it and one other use', () => {
    expect(
      guessing({
        account_age_hours: 0.5,
        ip_failed_attempts_1h: 3,
        ip_customers_1h: 1,
        customer_failed_attempts_1h: 0,
      }),
    ).toBe(true);
    expect(guessing({ ip_failed_attempts_1h: 4, ip_customers_1h: 2, customer_failed_attempts_1h: 0 })).toBe(
      true,
    );
    // A typo or two, or an address many share (a NAT): not on this count.
    expect(
      guessing({
        account_age_hours: 0.5,
        ip_failed_attempts_1h: 2,
        ip_customers_1h: 1,
        customer_failed_attempts_1h: 0,
      }),
    ).toBe(false);
    expect(
      guessing({
        account_age_hours: 0.5,
        ip_failed_attempts_1h: 5,
        ip_customers_1h: 3,
        customer_failed_attempts_1h: 0,
      }),
    ).toBe(false);
  });

  it("challenges a fresh account's fifth failure of the hour wherever it comes from (a guesser behind a NAT)", () => {
    const nat = { ip_failed_attempts_1h: 8, ip_customers_1h: 40 };
    expect(guessing({ ...nat, account_age_hours: 0.5, customer_failed_attempts_1h: 5 })).toBe(true);
    // An account of unknown age is not taken for a fresh one here: most callers never say.
    expect(guessing({ ...nat, customer_failed_attempts_1h: 7 })).toBe(false);
    expect(guessing({ ...nat, account_age_hours: 0.5, customer_failed_attempts_1h: 4 })).toBe(false);
    expect(guessing({ ...nat, ...established, customer_failed_attempts_1h: 9 })).toBe(false);
  });
});

describe('a code a locked-out guesser asked for', () => {
  const afterLockout = (f: Record<string, number>) => fires('rule_default_code_after_lockout', f);

  it('challenges a new or unknown account using it, and spares an established one', () => {
    expect(afterLockout({ code_locked_tries_1h: 1, account_age_hours: 0.1 })).toBe(true);
    expect(afterLockout({ code_locked_tries_1h: 2 })).toBe(true);
    expect(afterLockout({ code_locked_tries_1h: 1, account_age_hours: 24 * 30 })).toBe(false);
    expect(afterLockout({ code_locked_tries_1h: 0, account_age_hours: 0.1 })).toBe(false);
  });
});
