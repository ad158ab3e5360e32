/**
 * The rule pack Promoguard ships, seeded on first start (ids are fixed, so an analyst's edit or
 * deletion sticks: a deleted shipped rule is not re-created). Each rule is documented in
 * docs/risk-engine.md under "Default rule pack"; thresholds are starting points to tune with backtests.
 */
import type { HoldWith, RiskAction, RuleMode } from '../domain/risk.js';

export interface PackRule {
  id: string;
  name: string;
  description: string;
  expression: string;
  action: RiskAction;
  mode: RuleMode;
  reason: string;
  /** A review rule that counts other fresh accounts holds the redemptions it counted with the one it holds. */
  holdWith?: HoldWith;
}

// ---- Account takeover (loyalty): the customer's own history against a conversion, a wallet read
// or the redemption of a coupon made from points (features in domain/risk.ts, docs/loyalty.md). Each
// rule needs some history (customer_history_actions >= 1): for a member nothing is known about, every
// device is new and none of this tells a thief from the member. A member on the usual device, or a
// new phone on the home network, passes.
const ACCOUNT_TAKEOVER_RULES: readonly PackRule[] = [
  {
    id: 'rule_default_ato_balance_drain',
    name: 'Balance drain from a new device',
    description:
      'A conversion of half the balance or more from a device the member never ordered from, on a network (/24, /48) it never used: the thief of a session empties the account. The member passes the step-up; a thief cannot.',
    expression:
      "request.operation == 'conversion' && features.customer_history_actions >= 1 && has(features.customer_device_new) && features.customer_device_new == 1 && (!has(features.customer_prefix_new) || features.customer_prefix_new == 1) && features.conversion_balance_share >= 0.5",
    action: 'challenge',
    mode: 'enforce',
    reason: 'Most of the balance converted from a device and network new for this member',
  },
  {
    id: 'rule_default_ato_repeat_conversion',
    name: 'Conversions in a row from a new device',
    description:
      'A second conversion within an hour from a device and network new for the member: a drain split into small conversions to stay under the share.',
    expression:
      "request.operation == 'conversion' && features.customer_history_actions >= 1 && has(features.customer_device_new) && features.customer_device_new == 1 && has(features.customer_prefix_new) && features.customer_prefix_new == 1 && has(features.hours_since_last_conversion) && features.hours_since_last_conversion < 1.0",
    action: 'challenge',
    mode: 'enforce',
    reason: 'Another conversion within the hour from a device and network new for this member',
  },
  {
    id: 'rule_default_ato_coupon_spent_at_once',
    name: 'Loyalty coupon spent at once from a new context',
    description:
      'A coupon made from points redeemed within the hour of its conversion from a device new for the member, with a card or network new for it: converted and cashed by someone else.',
    expression:
      'has(features.loyalty_coupon_age_minutes) && features.loyalty_coupon_age_minutes < 60.0 && features.customer_history_actions >= 1 && has(features.customer_device_new) && features.customer_device_new == 1 && ((has(features.customer_payment_new) && features.customer_payment_new == 1) || (has(features.customer_prefix_new) && features.customer_prefix_new == 1))',
    action: 'challenge',
    mode: 'enforce',
    reason: 'A fresh loyalty coupon spent from a device and card or network new for this member',
  },
  {
    id: 'rule_default_ato_unusual_hour',
    name: 'Drain at an unusual hour',
    description:
      'Most of the balance converted at an hour the member has almost never acted in (under 5 % of its history within an hour either side), from a new device. Ships in shadow mode: backtest it before enforcing.',
    expression:
      "request.operation == 'conversion' && has(features.customer_hour_share) && features.customer_hour_share < 0.05 && has(features.customer_device_new) && features.customer_device_new == 1 && features.conversion_balance_share >= 0.8",
    action: 'review',
    mode: 'shadow',
    reason: 'Most of the balance converted at an unusual hour from a new device',
  },
  {
    id: 'rule_default_ato_wallet_new_context',
    name: 'Wallet read from a new device and network',
    description:
      "A member's coupon wallet opened from a device and network it never used: often a thief's first look. Ships in shadow mode (every new phone does this too).",
    expression:
      "request.operation == 'wallet_read' && features.customer_history_actions >= 1 && has(features.customer_device_new) && features.customer_device_new == 1 && has(features.customer_prefix_new) && features.customer_prefix_new == 1",
    action: 'challenge',
    mode: 'shadow',
    reason: 'The wallet was opened from a device and network new for this member',
  },
];

export const DEFAULT_PACK: readonly PackRule[] = [
  {
    id: 'rule_default_automation_agent',
    name: 'Automation user agent',
    description:
      'Headless browsers, scripting libraries and command-line HTTP clients do not shop; they redeem at scale.',
    expression:
      "has(request.user_agent) && request.user_agent.lowerAscii().matches('headless|phantomjs|selenium|puppeteer|playwright|python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client|scrapy')",
    action: 'block',
    mode: 'enforce',
    reason: 'The request comes from an automation tool, not a shopper',
  },
  {
    id: 'rule_default_device_farm',
    name: 'Device used by many accounts',
    description:
      'Five or more accounts on one device within 24 hours is a bot or account farm; a shared family device has two or three.',
    expression: 'features.device_customers_24h >= 5',
    action: 'block',
    mode: 'enforce',
    reason: 'Five or more accounts used this device in the last 24 hours',
  },
  {
    id: 'rule_default_device_shared',
    name: 'Device shared by several accounts',
    description:
      "Three or four accounts on one device within 24 hours, one of them new: worth a look, not a refusal. A family tablet shared by a household's established accounts is not held.",
    expression: 'features.device_customers_24h >= 3 && features.linked_new_accounts >= 1',
    action: 'review',
    mode: 'enforce',
    reason: 'Three or more accounts used this device in the last 24 hours',
  },
  {
    id: 'rule_default_device_repeat',
    name: 'Device redeeming a campaign repeatedly',
    description:
      'The same device already redeemed this campaign twice within 24 hours (under any accounts), one of them new; a household of established accounts on its family tablet is not held.',
    expression: 'features.device_campaign_redemptions_24h >= 2 && features.linked_new_accounts >= 1',
    action: 'review',
    mode: 'enforce',
    reason: 'This device already redeemed this campaign twice in 24 hours',
  },
  {
    id: 'rule_default_payment_ring',
    name: 'Many cards on one code',
    description:
      'A unique (not public) code paid for with five or more payment instruments in 30 days points to a ring sharing it (M5).',
    expression: "code.kind == 'unique' && features.code_payment_instruments_30d >= 5",
    action: 'review',
    mode: 'enforce',
    reason: 'Five or more payment instruments used this code in 30 days',
  },
  {
    id: 'rule_default_new_account_burst',
    name: 'Burst of new accounts',
    description:
      "A leaked code is farmed by freshly made accounts (M6). New accounts must pass a step-up while 20 or more new accounts redeemed the campaign in the last hour, and more than the campaign's declared planned peak expects (a flash sale's own sign-ups are expected); established customers are not affected.",
    expression:
      'has(features.account_age_hours) && features.account_age_hours < 24.0 && features.campaign_new_accounts_1h >= 20 && features.campaign_new_accounts_1h >= features.campaign_planned_per_hour',
    action: 'challenge',
    mode: 'enforce',
    reason: 'Many brand-new accounts are redeeming this campaign; this account is new',
  },
  {
    id: 'rule_default_new_account_flood',
    name: 'Flood of new accounts',
    description:
      "A leaked code past the burst: while 5 or more accounts younger than a day redeemed the campaign in the last hour, beyond its declared planned peak, a new account's redemption is held for review. A step-up alone lets through whoever opens accounts on their own phone; the hold stops the money until a person looks. Established customers, and a declared flash sale's sign-ups, are not affected.",
    expression:
      'has(features.account_age_hours) && features.account_age_hours < 24.0 && features.campaign_new_accounts_1h >= 5 && features.campaign_new_accounts_1h >= features.campaign_planned_per_hour',
    action: 'review',
    mode: 'enforce',
    reason: 'A flood of brand-new accounts is redeeming this campaign; this account is new',
    holdWith: 'campaign_new_accounts_1h',
  },
  {
    id: 'rule_default_referral_ring',
    name: 'Fresh accounts sharing one code',
    description:
      "A code of its own (a referral or partner code, kind unique) that another account younger than a day already redeemed within 24 hours, redeemed by a new account again: a ring farming its leader's referral code with fresh accounts, whatever identifiers they rotate. An honest referrer's friends rarely sign up and order the same day; the hold lets a person release them.",
    expression:
      "code.kind == 'unique' && has(features.account_age_hours) && features.account_age_hours < 24.0 && features.code_new_accounts_24h >= 1",
    action: 'review',
    mode: 'enforce',
    reason: 'Another brand-new account redeemed this code in the last day; this account is new too',
    holdWith: 'code_new_accounts_24h',
  },
  {
    id: 'rule_default_partner_burn',
    name: "Partner's cap spent fast",
    description:
      "The code's partner redeemed a tenth of its contract cap or more within the last hour: a cap meant to last the contract is being spent in hours, the shape of a batch posted on a coupon site. Redemptions are held for review (the partner's genuine customers are released) while the rate lasts.",
    expression:
      'has(features.partner_cap) && features.partner_cap > 0 && features.partner_redemptions_1h * 10 >= features.partner_cap',
    action: 'review',
    mode: 'enforce',
    reason: "A tenth of the partner's cap was redeemed within the last hour",
  },
  {
    id: 'rule_default_guessing_address',
    name: 'Guessing from this address',
    description:
      'Fifteen or more failed codes from one address (IPv6: /64) in an hour, slower than the lockout catches: a slow sprayer, also one opening a fresh account for every guess. A customer with an account a week old or more is spared where the failures are spread thin (under three per account seen there): the subscribers of a carrier or campus NAT share its address and the typos and guesser behind it, and the guesser is still locked out on its own.',
    expression:
      '(features.ip_failed_attempts_1h >= 15 && (!has(features.account_age_hours) || features.account_age_hours < 168.0 || features.ip_failed_attempts_1h >= 3 * features.ip_customers_1h)) || ((!has(features.account_age_hours) || features.account_age_hours < 24.0) && features.ip_failed_attempts_1h >= 3 && features.ip_customers_1h <= 2) || (has(features.account_age_hours) && features.account_age_hours < 24.0 && features.customer_failed_attempts_1h >= 5)',
    action: 'challenge',
    mode: 'enforce',
    reason: 'Many failed code attempts came from this address in the last hour',
  },
  {
    id: 'rule_default_code_after_lockout',
    name: 'Code a locked-out guesser asked for',
    description:
      'A caller locked out for failed code attempts asked for this very code in the last hour, and a new or unknown account now uses it: a guesser that found it and changed account, address and device. An established account is spared (a customer who mistyped until locked, then got it right).',
    expression:
      'features.code_locked_tries_1h >= 1 && (!has(features.account_age_hours) || features.account_age_hours < 24.0)',
    action: 'challenge',
    mode: 'enforce',
    reason: 'A caller locked out for guessing asked for this code in the last hour',
  },
  {
    id: 'rule_default_linked_accounts',
    name: 'Linked accounts',
    description:
      'Accounts linked by a shared email, phone, address, device or card that look like a ring: three or more of them made in the last 7 days, or six or more sharing a card, device, phone or email. A household sharing a card and address, or colleagues shipping to the office, have established accounts and are not held.',
    expression:
      '(features.linked_accounts >= 3 && features.linked_new_accounts >= 3) || (features.linked_accounts >= 6 && features.linked_strong_links >= 1)',
    action: 'review',
    mode: 'enforce',
    reason: 'Several new accounts, or many accounts sharing a card or device, are linked to this customer',
  },
  {
    id: 'rule_default_unusual_amount',
    name: 'Unusual order amount',
    description:
      "An order five times the customer's usual amount, from a customer with history (account takeover, reselling). Ships in shadow mode: backtest it before enforcing.",
    expression:
      'has(features.order_amount_ratio) && features.customer_redemptions >= 3 && features.order_amount_ratio >= 5.0',
    action: 'review',
    mode: 'shadow',
    reason: "The order is five times the customer's usual amount",
  },
  ...ACCOUNT_TAKEOVER_RULES,
];
