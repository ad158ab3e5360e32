/**
 * The risk decision, as pure data and pure functions: the declared features a rule may read, the
 * actions a rule may take, and how the rules that fired resolve into one action. No I/O: the counters
 * behind the features and the CEL evaluator reach this module as values.
 */

export const RISK_ACTIONS = ['allow', 'review', 'challenge', 'block'] as const;
export type RiskAction = (typeof RISK_ACTIONS)[number];

/**
 * What a review rule holds along with the redemption that tripped it: the earlier redemptions its
 * count was made of (accounts younger than a day), not yet reviewed nor rolled back — of the same code
 * in the last 24 hours, or of the same campaign in the last hour.
 */
export const HOLD_WITH = ['code_new_accounts_24h', 'campaign_new_accounts_1h'] as const;
export type HoldWith = (typeof HOLD_WITH)[number];

export const RULE_MODES = ['enforce', 'shadow'] as const;
export type RuleMode = (typeof RULE_MODES)[number];

/** How a merchant verified the shopper after a `challenge` (recorded on the decision). */
export const STEP_UP_METHODS = ['otp', '3ds', 'password', 'biometric', 'other'] as const;
export type StepUpMethod = (typeof STEP_UP_METHODS)[number];

/** Severity: the most severe enforced action wins. */
const RANK: Record<RiskAction, number> = { allow: 0, review: 1, challenge: 2, block: 3 };

const HOUR = 3_600_000;

export type FeatureEntity =
  | 'device'
  | 'device+campaign'
  | 'code'
  | 'campaign'
  | 'partner+campaign'
  | 'ip'
  | 'person'
  | 'customer'
  | 'decision';

/** What the engine decides on: checkout attempts, and the loyalty operations a thief drains an account with. */
export const RISK_OPERATIONS = ['validation', 'redemption', 'conversion', 'wallet_read'] as const;
export type RiskOperation = (typeof RISK_OPERATIONS)[number];
/** The operations a feature is computed for when its definition names none. */
export const CHECKOUT_OPERATIONS: readonly RiskOperation[] = ['validation', 'redemption'];
const ALL_OPERATIONS: readonly RiskOperation[] = RISK_OPERATIONS;

export interface FeatureDefinition {
  name: string;
  /** What the feature is counted per. */
  entity: FeatureEntity;
  /** Sliding window length in ms; null for a value read at decision time. */
  windowMs: number | null;
  statistic: 'count' | 'distinct count' | 'value' | 'ratio' | 'probability';
  /** CEL type. */
  type: 'int' | 'double';
  /** Where the value comes from: window counters (memory or Redis), the database, the request, or the learned model. */
  source: 'counter' | 'database' | 'request' | 'model';
  description: string;
  /**
   * The operations it is computed for (default: validation and redemption). A rule reading a feature
   * an operation does not compute does not apply to that operation.
   */
  operations?: readonly RiskOperation[];
}

/**
 * The feature registry. A rule can read exactly these (`features.<name>`); anything else is a type
 * error when the rule is saved. Counter features count an event for exactly their window: an event at
 * time t counts for decisions at times in [t, t + window) and no longer from t + window on. The attempt being
 * decided is recorded only after its decision, so it never counts in its own features.
 */
export const FEATURES: readonly FeatureDefinition[] = [
  {
    name: 'device_campaign_redemptions_24h',
    entity: 'device+campaign',
    windowMs: 24 * HOUR,
    statistic: 'count',
    type: 'int',
    source: 'counter',
    description: 'Redemptions made from this device in this campaign in the last 24 hours.',
  },
  {
    name: 'device_customers_24h',
    entity: 'device',
    windowMs: 24 * HOUR,
    statistic: 'distinct count',
    type: 'int',
    source: 'counter',
    description:
      'Distinct customer accounts seen on this device (validations, redemptions and conversions) in the last 24 hours, not counting this one unless seen before.',
    operations: ALL_OPERATIONS,
  },
  {
    name: 'code_payment_instruments_30d',
    entity: 'code',
    windowMs: 30 * 24 * HOUR,
    statistic: 'distinct count',
    type: 'int',
    source: 'counter',
    description:
      'Distinct payment instruments that redeemed this code in the last 30 days (M5: many cards on one code points to a ring).',
  },
  {
    name: 'campaign_new_accounts_1h',
    entity: 'campaign',
    windowMs: HOUR,
    statistic: 'distinct count',
    type: 'int',
    source: 'counter',
    description:
      'Distinct accounts younger than 24 hours that redeemed in this campaign in the last hour (M6: a leaked code farmed by new accounts).',
  },
  {
    name: 'code_new_accounts_24h',
    entity: 'code',
    windowMs: 24 * HOUR,
    statistic: 'distinct count',
    type: 'int',
    source: 'counter',
    description:
      'Distinct accounts younger than 24 hours that redeemed this code in the last 24 hours (a referral code farmed by a ring of fresh accounts).',
  },
  {
    name: 'code_locked_tries_1h',
    entity: 'code',
    windowMs: HOUR,
    statistic: 'count',
    type: 'int',
    source: 'counter',
    description:
      'Times in the last hour a caller locked out for failed code attempts asked for this code (its text): a guesser that found it and then changed account, address and device.',
  },
  {
    name: 'partner_redemptions_1h',
    entity: 'partner+campaign',
    windowMs: HOUR,
    statistic: 'count',
    type: 'int',
    source: 'counter',
    description:
      "Redemptions of this code's partner's codes in this campaign in the last hour; 0 for a code without a partner.",
  },
  {
    name: 'ip_failed_attempts_1h',
    entity: 'ip',
    windowMs: HOUR,
    statistic: 'count',
    type: 'int',
    source: 'counter',
    description:
      'Failed validations and redemptions (unknown, used-up, expired, revoked or not-yours codes; a blocked identifier or blocked_by_rule) from this client address (IPv6: its /64) in the last hour.',
    operations: ALL_OPERATIONS,
  },
  {
    name: 'customer_failed_attempts_1h',
    entity: 'customer',
    windowMs: HOUR,
    statistic: 'count',
    type: 'int',
    source: 'counter',
    description:
      "Failed validations and redemptions by this customer account in the last hour (the same failures as ip_failed_attempts_1h): a guesser's own account, wherever its requests come from.",
    operations: ALL_OPERATIONS,
  },
  {
    name: 'ip_customers_1h',
    entity: 'ip',
    windowMs: HOUR,
    statistic: 'distinct count',
    type: 'int',
    source: 'counter',
    description:
      'Distinct customer accounts seen from this client address (IPv6: its /64) in validations and redemptions in the last hour, not counting this one unless seen before: how many people a failure count on a NAT is shared by.',
    operations: ALL_OPERATIONS,
  },
  {
    name: 'linked_accounts',
    entity: 'person',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      'Customer accounts in the person this request belongs to (linked by shared email, phone, address, device or payment instrument), this customer included.',
  },
  {
    name: 'linked_new_accounts',
    entity: 'person',
    windowMs: null,
    statistic: 'count',
    type: 'int',
    source: 'database',
    description:
      'Of the linked accounts (this one included), those created less than 7 days ago as the checkout reported context.account_created_at: a ring opens fresh accounts, a household or an office has old ones.',
  },
  {
    name: 'linked_cards',
    entity: 'person',
    windowMs: null,
    statistic: 'distinct count',
    type: 'int',
    source: 'database',
    description:
      'Distinct payment instruments the linked accounts used between them (this request included).',
  },
  {
    name: 'linked_devices',
    entity: 'person',
    windowMs: null,
    statistic: 'distinct count',
    type: 'int',
    source: 'database',
    description: 'Distinct devices the linked accounts used between them (this request included).',
  },
  {
    name: 'linked_addresses',
    entity: 'person',
    windowMs: null,
    statistic: 'distinct count',
    type: 'int',
    source: 'database',
    description:
      'Distinct shipping addresses (exact, unit included) the linked accounts used between them (this request included).',
  },
  {
    name: 'linked_strong_links',
    entity: 'person',
    windowMs: null,
    statistic: 'count',
    type: 'int',
    source: 'database',
    description:
      'Identifiers other than an address (card, device, phone, email) that two or more of the linked accounts share. 0: the accounts are linked only by where they ship (an office, a building, a household without a shared card).',
  },
  {
    name: 'shared_identifier_customers',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      "The most other customers seen with one of this request's identifiers (counted up to 100). From IDENTITY_SHARED_LIMIT on, that identifier no longer links anyone: a pickup locker, an office address.",
  },
  {
    name: 'email_disposable',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'request',
    description:
      "1 when context.email's domain is a throwaway-mail domain (the mailchecker list), else 0. Absent without an email: test with has(features.email_disposable).",
  },
  {
    name: 'campaign_planned_per_hour',
    entity: 'campaign',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      "Redemptions per hour the campaign's declared planned peak expects (planned_peaks expected_per_minute x 60), for a peak that overlaps the last hour; 0 when none does. A flash sale's own burst is expected, not a leak.",
  },
  {
    name: 'partner_cap',
    entity: 'partner+campaign',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      "The contract cap on redemptions of this code's partner in this campaign. Absent for a code without a partner or a partner without a cap: test with has(features.partner_cap).",
  },
  {
    name: 'customer_redemptions',
    entity: 'customer',
    windowMs: null,
    statistic: 'count',
    type: 'int',
    source: 'database',
    description: "The customer's redemptions in force, any campaign (counted up to 1,000).",
  },
  {
    name: 'account_age_hours',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'double',
    source: 'request',
    description:
      'Hours since context.account_created_at. Absent when the caller did not send it: test with has(features.account_age_hours).',
  },
  {
    name: 'order_amount_ratio',
    entity: 'customer',
    windowMs: null,
    statistic: 'ratio',
    type: 'double',
    source: 'database',
    description:
      "This order's subtotal divided by the mean subtotal of the customer's last 20 redemptions in the same currency. Absent without such history: test with has(features.order_amount_ratio).",
  },
  // ---- account takeover: the customer's own history (domain/takeover.ts, store/takeover.ts) ----
  {
    name: 'customer_device_new',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      'Loyalty operations and attempts on loyalty coupons: 1 when this customer never made a redemption from this device_id nor passed a step-up on it, else 0. Absent without a device_id.',
    operations: ALL_OPERATIONS,
  },
  {
    name: 'customer_prefix_new',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      "As customer_device_new, for the client address's network: its IPv4 /24 or IPv6 /48. Absent without an address.",
    operations: ALL_OPERATIONS,
  },
  {
    name: 'customer_payment_new',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'int',
    source: 'database',
    description:
      'As customer_device_new, for the payment_fingerprint (a card new for the account). Absent without one.',
    operations: ALL_OPERATIONS,
  },
  {
    name: 'customer_history_actions',
    entity: 'customer',
    windowMs: null,
    statistic: 'count',
    type: 'int',
    source: 'database',
    description:
      'Redemptions and step-up-verified conversions that taught the customer its history (devices, networks, cards, hours): 0 means every device is new because nothing is known yet.',
    operations: ALL_OPERATIONS,
  },
  {
    name: 'customer_hour_share',
    entity: 'customer',
    windowMs: null,
    statistic: 'ratio',
    type: 'double',
    source: 'database',
    description:
      "Share of the customer's recorded actions in this UTC hour and the hour either side (0.0: never at this time of day). Absent under 5 actions.",
    operations: ALL_OPERATIONS,
  },
  {
    name: 'hours_since_last_conversion',
    entity: 'customer',
    windowMs: null,
    statistic: 'value',
    type: 'double',
    source: 'database',
    description: "Hours since the customer's previous conversion. Absent before the first.",
    operations: ALL_OPERATIONS,
  },
  {
    name: 'conversion_balance_share',
    entity: 'customer',
    windowMs: null,
    statistic: 'ratio',
    type: 'double',
    source: 'database',
    description: 'Conversions: the points asked for divided by the balance before it (1.0 drains it).',
    operations: ['conversion'],
  },
  {
    name: 'loyalty_coupon_age_minutes',
    entity: 'code',
    windowMs: null,
    statistic: 'value',
    type: 'double',
    source: 'database',
    description:
      'Redemptions of a coupon made from points: minutes since its conversion (a thief spends it at once). Absent for other codes.',
    operations: CHECKOUT_OPERATIONS,
  },
  {
    name: 'model_score',
    entity: 'decision',
    windowMs: null,
    statistic: 'probability',
    type: 'double',
    source: 'model',
    description:
      "The enforcing learned model's probability (0–1) that this attempt is abuse, over the other features. Absent while no model is enforcing: test with has(features.model_score).",
  },
];

/** The operations a feature is computed for. */
export function featureOperations(f: FeatureDefinition): readonly RiskOperation[] {
  return f.operations ?? CHECKOUT_OPERATIONS;
}

export type FeatureName = string;
export type FeatureValues = Record<FeatureName, number>;

export interface RuleRef {
  id: string;
  name: string;
  action: RiskAction;
  mode: RuleMode;
  reason: string;
}

/**
 * How one rule came out: it fired, it did not, a feature it reads could not be computed
 * (`unavailable`), or its expression failed at run time (`error`, e.g. a division by zero).
 */
export type RuleResult = 'fired' | 'not_fired' | 'unavailable' | 'error';

export interface RuleOutcome {
  rule: RuleRef;
  result: RuleResult;
  /** For `unavailable`: the features; for `error`: the message. */
  detail?: string | undefined;
}

export interface Resolution {
  action: RiskAction;
  /** The enforced outcomes that set the action (several when several rules agree). */
  because: RuleOutcome[];
  /** A challenge that the caller's step-up proof satisfied. */
  challengeSatisfied: boolean;
}

/**
 * Resolve the outcomes into one action, deterministically:
 *   allow-list > block > challenge > review > allow.
 * - Only enforced rules act; shadow rules are recorded by the caller and never change the action.
 * - An enforced rule whose features could not be computed fails open to `review` (caps are enforced
 *   by the database and still fail closed): the attempt goes through but a person looks at it.
 * - A rule whose expression fails at run time does not fire (it is counted and shown).
 * - A valid step-up proof satisfies `challenge`; it never lifts a `block`.
 * - An allow-listed identifier makes the action `allow` whatever fired (rules are still recorded).
 * An `allow` rule that fires records the match; it is the action only when nothing more severe fired.
 */
export function resolveDecision(input: {
  outcomes: readonly RuleOutcome[];
  allowListed: boolean;
  stepUp: boolean;
}): Resolution {
  const acting: { action: RiskAction; outcome: RuleOutcome }[] = [];
  for (const outcome of input.outcomes) {
    if (outcome.rule.mode !== 'enforce') continue;
    if (outcome.result === 'fired') acting.push({ action: outcome.rule.action, outcome });
    else if (outcome.result === 'unavailable') acting.push({ action: 'review', outcome });
  }
  if (input.allowListed) return { action: 'allow', because: [], challengeSatisfied: false };
  let challengeSatisfied = false;
  let best: RiskAction = 'allow';
  for (const a of acting) {
    if (a.action === 'challenge' && input.stepUp) {
      challengeSatisfied = true;
      continue;
    }
    if (RANK[a.action] > RANK[best]) best = a.action;
  }
  const because = acting
    .filter((a) => a.action === best && !(a.action === 'challenge' && input.stepUp))
    .map((a) => a.outcome)
    .sort((x, y) => (x.rule.id < y.rule.id ? -1 : x.rule.id > y.rule.id ? 1 : 0));
  return { action: best, because, challengeSatisfied };
}

/**
 * The action a decision would have taken had one more rule been enforced: the decided action, raised
 * by the rule's (a rule that could not be evaluated fails open to `review`). The same resolution as
 * resolveDecision: an allow-listed identifier stays `allow`, and a step-up proof satisfies a challenge.
 */
export function actionIfEnforced(input: {
  decided: RiskAction;
  ruleAction: RiskAction;
  result: RuleResult;
  allowListed: boolean;
  stepUp: boolean;
}): RiskAction {
  if (input.allowListed || input.result === 'error') return input.decided;
  const acting = input.result === 'unavailable' ? 'review' : input.ruleAction;
  if (acting === 'challenge' && input.stepUp) return input.decided;
  return RANK[acting] > RANK[input.decided] ? acting : input.decided;
}

/** Does an event at `eventAt` count in a window of `windowMs` ending at `now`? It does while now < eventAt + window. */
export function inWindow(eventAt: number, now: number, windowMs: number): boolean {
  return eventAt > now - windowMs;
}

/** Hours between an account's creation and now, never negative (clocks differ between systems). */
export function accountAgeHours(createdAt: Date, now: Date): number {
  return Math.max(0, (now.getTime() - createdAt.getTime()) / HOUR);
}

/** The subtotal against the customer's usual one; null without history (or a zero mean). */
export function amountRatio(subtotalMinor: number, meanMinor: number | null): number | null {
  if (meanMinor === null || meanMinor <= 0) return null;
  return subtotalMinor / meanMinor;
}
