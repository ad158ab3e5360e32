/**
 * The shipped rules that read identity features, over the feature values the hard cases produce: a
 * household or an office is not held, an alias ring still is, and a flash sale's declared peak keeps
 * its own sign-ups from a step-up while a leak beyond it is still challenged.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PACK } from '../../src/risk/default-pack.js';
import { compileRule, toActivation } from '../../src/risk/rule-language.js';

function fires(id: string, features: Record<string, number>): boolean {
  const rule = DEFAULT_PACK.find((r) => r.id === id);
  if (!rule) throw new Error(`no rule ${id}`);
  const compiled = compileRule(rule.expression);
  if (!compiled.ok) throw new Error(compiled.message);
  return compiled.rule.evaluate(toActivation({ features, code: { kind: 'public' } }));
}

const quiet = {
  device_customers_24h: 0,
  device_campaign_redemptions_24h: 0,
  linked_accounts: 1,
  linked_new_accounts: 0,
  linked_cards: 1,
  linked_devices: 1,
  linked_addresses: 1,
  linked_strong_links: 0,
  shared_identifier_customers: 0,
  campaign_new_accounts_1h: 0,
  campaign_planned_per_hour: 0,
};

describe('linked accounts (default pack)', () => {
  const linked = (f: Partial<typeof quiet>) => fires('rule_default_linked_accounts', { ...quiet, ...f });

  it('does not hold a household of established accounts sharing a card and an address', () => {
    expect(linked({ linked_accounts: 5, linked_cards: 1, linked_addresses: 1, linked_strong_links: 1 })).toBe(
      false,
    );
  });

  it('does not hold colleagues linked only through the office address', () => {
    expect(linked({ linked_accounts: 8, linked_cards: 8, linked_devices: 8, linked_strong_links: 0 })).toBe(
      false,
    );
  });

  it('holds three or more new accounts linked together (an alias ring)', () => {
    expect(linked({ linked_accounts: 3, linked_new_accounts: 3, linked_cards: 3 })).toBe(true);
  });

  it('holds six or more accounts sharing a card or device, however old', () => {
    expect(linked({ linked_accounts: 6, linked_strong_links: 1 })).toBe(true);
  });
});

describe('shared devices (default pack)', () => {
  it("does not hold a household's family tablet, but does a device shared with a new account", () => {
    const tablet = {
      ...quiet,
      device_customers_24h: 3,
      device_campaign_redemptions_24h: 2,
      linked_accounts: 3,
    };
    expect(fires('rule_default_device_shared', tablet)).toBe(false);
    expect(fires('rule_default_device_repeat', tablet)).toBe(false);
    const fresh = { ...tablet, linked_new_accounts: 1 };
    expect(fires('rule_default_device_shared', fresh)).toBe(true);
    expect(fires('rule_default_device_repeat', fresh)).toBe(true);
  });
});

describe('new-account burst (default pack)', () => {
  const burst = (f: Record<string, number>) =>
    fires('rule_default_new_account_burst', { ...quiet, account_age_hours: 0.5, ...f });

  it('challenges new accounts in a burst nobody declared', () => {
    expect(burst({ campaign_new_accounts_1h: 40 })).toBe(true);
  });

  it("expects a flash sale's own sign-ups inside its declared peak", () => {
    expect(burst({ campaign_new_accounts_1h: 140, campaign_planned_per_hour: 600 })).toBe(false);
  });

  it('still challenges a burst beyond what the declared peak expects', () => {
    expect(burst({ campaign_new_accounts_1h: 700, campaign_planned_per_hour: 600 })).toBe(true);
  });
});
