/**
 * The rule language: CEL expressions type-checked against the declared variables when a rule is
 * saved, the features a rule reads (which decide whether it fails open when a counter store is away),
 * and the conversion of stored decision inputs into CEL values for live decisions and backtests.
 */
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../src/domain/risk.js';
import { DEFAULT_PACK } from '../../src/risk/default-pack.js';
import {
  type CompiledRule,
  compileRule,
  type DecisionInputs,
  MAX_EXPRESSION_LENGTH,
  RULE_VARIABLES,
  toActivation,
} from '../../src/risk/rule-language.js';

function compiled(expression: string): CompiledRule {
  const result = compileRule(expression);
  if (!result.ok) throw new Error(`expected ${expression} to compile: ${result.message}`);
  return result.rule;
}

function refusal(expression: string): string {
  const result = compileRule(expression);
  if (result.ok) throw new Error(`expected ${expression} to be refused`);
  return result.message;
}

/** What a typical decision saw (stored JSON form). */
function inputs(overrides: Partial<Record<string, Record<string, unknown>>> = {}): DecisionInputs {
  const base: DecisionInputs = {
    features: {
      device_campaign_redemptions_24h: 0,
      device_customers_24h: 0,
      code_payment_instruments_30d: 0,
      campaign_new_accounts_1h: 0,
      ip_failed_attempts_1h: 0,
      linked_accounts: 1,
      customer_redemptions: 0,
    },
    request: {
      operation: 'redemption',
      channel: 'checkout',
      user_agent: 'Mozilla/5.0',
      has_device: true,
      has_payment: false,
      has_email: false,
      has_phone: false,
      has_shipping_address: false,
      has_ip: true,
    },
    order: { currency: 'USD', subtotal_minor: 10_000, shipping_minor: 0, discount_minor: 500 },
    campaign: { id: 'cmp_1', name: 'Summer', discount_type: 'fixed_amount', metadata: { tier: 'gold' } },
    code: { kind: 'public', bound: false },
    customer: { id: 'cus_1', first_order: false },
  };
  for (const [variable, fields] of Object.entries(overrides))
    base[variable] = { ...base[variable], ...fields };
  return base;
}

const evaluate = (expression: string, given: DecisionInputs = inputs()) =>
  compiled(expression).evaluate(toActivation(given));

describe('compileRule: valid rules', () => {
  it('compiles and evaluates a rule over features, request, order, campaign, code and customer', () => {
    const rule =
      "features.device_customers_24h >= 5 && request.channel == 'checkout' && order.subtotal_minor > 5000 && " +
      "campaign.metadata['tier'] == 'gold' && code.kind == 'public' && !code.bound && customer.id == 'cus_1'";
    expect(evaluate(rule, inputs({ features: { device_customers_24h: 5 } }))).toBe(true);
    expect(evaluate(rule, inputs({ features: { device_customers_24h: 4 } }))).toBe(false);
    expect(
      evaluate(rule, inputs({ features: { device_customers_24h: 5 }, order: { subtotal_minor: 5000 } })),
    ).toBe(false);
  });

  it('compiles every rule of the shipped pack', () => {
    for (const rule of DEFAULT_PACK)
      expect(compileRule(rule.expression), rule.id).toMatchObject({ ok: true });
  });

  it('matches user agents with the shipped automation pattern, case-insensitively', () => {
    const rule = DEFAULT_PACK.find((r) => r.id === 'rule_default_automation_agent');
    if (!rule) throw new Error('the automation rule is shipped');
    expect(evaluate(rule.expression, inputs({ request: { user_agent: 'curl/8.4.0' } }))).toBe(true);
    expect(
      evaluate(rule.expression, inputs({ request: { user_agent: 'Mozilla/5.0 HeadlessChrome/120' } })),
    ).toBe(true);
    expect(
      evaluate(rule.expression, inputs({ request: { user_agent: 'Mozilla/5.0 (iPhone) Safari' } })),
    ).toBe(false);
    // Without a user agent the rule does not fire (and does not fail).
    const noAgent = inputs();
    delete noAgent.request?.user_agent;
    expect(evaluate(rule.expression, noAgent)).toBe(false);
  });

  it('compares a double feature with an int literal and with a double literal', () => {
    const given = inputs({ features: { account_age_hours: 3.5 } });
    expect(evaluate('features.account_age_hours < 24', given)).toBe(true);
    expect(evaluate('features.account_age_hours < 24.0', given)).toBe(true);
    expect(evaluate('features.account_age_hours > 3.6', given)).toBe(false);
  });
});

describe('compileRule: type errors are refused when the rule is saved, naming the problem', () => {
  it('names a typo in a feature name', () => {
    expect(refusal('features.device_cutsomers_24h >= 5')).toContain('device_cutsomers_24h');
  });

  it('names an undeclared field of a declared variable', () => {
    expect(refusal("request.referrer == 'x'")).toContain('referrer');
    expect(refusal('order.total_minor > 5')).toContain('total_minor');
  });

  it('names an unknown variable', () => {
    const message = refusal('device.customers >= 5');
    expect(message).toMatch(/unknown variable/i);
    expect(message).toContain('device');
  });

  it('refuses an expression that does not yield a bool, saying what it yields', () => {
    const message = refusal('features.device_customers_24h + 1');
    expect(message).toContain('bool');
    expect(message).toContain('int');
    expect(refusal("request.channel + 'x'")).toContain('string');
  });

  it('refuses comparing a count with a string', () => {
    const message = refusal("features.device_customers_24h == 'five'");
    expect(message).toContain('int');
    expect(message).toContain('string');
    expect(compileRule("features.linked_accounts > '3'")).toMatchObject({ ok: false });
  });

  it('refuses a syntax error with a one-line message', () => {
    const message = refusal('features.device_customers_24h >=');
    expect(message.length).toBeGreaterThan(0);
    expect(message).not.toContain('\n');
  });

  it(`refuses an expression longer than ${MAX_EXPRESSION_LENGTH} characters, and accepts one that long`, () => {
    const clause = 'features.linked_accounts >= 4';
    let long = clause;
    while (long.length + ' || '.length + clause.length <= MAX_EXPRESSION_LENGTH) long += ` || ${clause}`;
    long += ' '.repeat(MAX_EXPRESSION_LENGTH - long.length);
    expect(long.length).toBe(MAX_EXPRESSION_LENGTH);
    expect(compileRule(long)).toMatchObject({ ok: true });
    expect(refusal(`${long} `)).toContain(String(MAX_EXPRESSION_LENGTH));
  });
});

describe('compileRule: absent optional features', () => {
  it('has() tests an optional feature that was not computed', () => {
    const rule = 'has(features.account_age_hours) && features.account_age_hours < 24.0';
    expect(evaluate(rule, inputs())).toBe(false);
    expect(evaluate(rule, inputs({ features: { account_age_hours: 2 } }))).toBe(true);
    expect(evaluate('!has(features.order_amount_ratio)', inputs())).toBe(true);
    expect(
      evaluate('has(features.order_amount_ratio)', inputs({ features: { order_amount_ratio: 1.5 } })),
    ).toBe(true);
  });

  it('reading an absent optional feature without has() fails at run time (the engine records an error)', () => {
    expect(() => evaluate('features.account_age_hours < 24.0', inputs())).toThrow(/account_age_hours/);
  });
});

describe('compileRule: the features a rule reads', () => {
  it('lists each feature read, once, sorted', () => {
    expect(
      compiled(
        'features.linked_accounts >= 4 || features.device_customers_24h >= 3 && features.linked_accounts > 1',
      ).features,
    ).toEqual(['device_customers_24h', 'linked_accounts']);
    expect(compiled('has(features.account_age_hours)').features).toEqual(['account_age_hours']);
    expect(compiled("request.channel == 'storefront'").features).toEqual([]);
  });

  it('lists the features of the shipped rules', () => {
    const reads = Object.fromEntries(DEFAULT_PACK.map((r) => [r.id, compiled(r.expression).features]));
    expect(reads).toMatchObject({
      rule_default_automation_agent: [],
      rule_default_device_farm: ['device_customers_24h'],
      rule_default_payment_ring: ['code_payment_instruments_30d'],
      rule_default_new_account_burst: [
        'account_age_hours',
        'campaign_new_accounts_1h',
        'campaign_planned_per_hour',
      ],
      rule_default_unusual_amount: ['customer_redemptions', 'order_amount_ratio'],
    });
  });

  it('lists a feature read by index (features["name"]): a counter outage must send such a rule to review', () => {
    // The index form type-checks (a typo in it is refused), so it is a way analysts can write a rule.
    expect(refusal('features["device_cutsomers_24h"] >= 5')).toContain('device_cutsomers_24h');
    expect(compiled('features["device_customers_24h"] >= 5').features).toEqual(['device_customers_24h']);
  });

  it('treats a rule that reads the features map as a whole as reading every feature', () => {
    // A dynamic key cannot be known when the rule is saved; it may read any feature.
    const dynamic = compileRule('features[request.channel] >= 5');
    if (dynamic.ok) expect(dynamic.rule.features).toEqual(FEATURES.map((f) => f.name).sort());
  });
});

describe('compileRule: run-time failures', () => {
  it('throws (the engine records an error) on a division by zero', () => {
    const rule = compiled('features.linked_accounts / features.customer_redemptions > 1');
    expect(() => rule.evaluate(toActivation(inputs()))).toThrow(/division by zero/);
    expect(
      rule.evaluate(toActivation(inputs({ features: { customer_redemptions: 1, linked_accounts: 3 } }))),
    ).toBe(true);
  });

  it('throws on an invalid regular expression', () => {
    expect(() => evaluate("request.user_agent.matches('(')")).toThrow();
  });
});

describe('toActivation', () => {
  it('turns declared ints into BigInt and keeps doubles, strings, bools and string maps', () => {
    const activation = toActivation(
      inputs({ features: { account_age_hours: 1.5, linked_accounts: 3 }, order: { subtotal_minor: 12_345 } }),
    );
    expect(activation.features?.linked_accounts).toBe(3n);
    expect(activation.features?.account_age_hours).toBe(1.5);
    expect(activation.order?.subtotal_minor).toBe(12_345n);
    expect(activation.order?.currency).toBe('USD');
    expect(activation.request?.has_ip).toBe(true);
    expect(activation.campaign?.metadata).toEqual({ tier: 'gold' });
  });

  it('keeps a whole-number double as a number (not a BigInt) so double comparisons work', () => {
    const activation = toActivation(inputs({ features: { account_age_hours: 48 } }));
    expect(activation.features?.account_age_hours).toBe(48);
    expect(
      compiled('features.account_age_hours >= 48.0').evaluate(
        toActivation(inputs({ features: { account_age_hours: 48 } })),
      ),
    ).toBe(true);
  });

  it('drops undeclared variables and fields', () => {
    const activation = toActivation({
      ...inputs({ features: { not_a_feature: 7 }, request: { secret: 'x' } }),
      extra: { a: 1 },
    });
    expect(Object.keys(activation).sort()).toEqual(Object.keys(RULE_VARIABLES).sort());
    expect(activation.features).not.toHaveProperty('not_a_feature');
    expect(activation.request).not.toHaveProperty('secret');
  });

  it('drops values of the wrong type, non-integral or unsafe ints, non-finite doubles and nulls', () => {
    const activation = toActivation({
      features: {
        linked_accounts: '3',
        customer_redemptions: 2.5,
        device_customers_24h: 2 ** 60,
        account_age_hours: Number.NaN,
        order_amount_ratio: null,
        ip_failed_attempts_1h: 4,
      },
      request: { has_ip: 'yes', channel: 7, operation: 'validation' },
      campaign: { metadata: { tier: 'gold', level: 3, nested: { a: 'b' } } },
      code: { bound: 1, kind: 'unique' },
    });
    expect(activation.features).toEqual({ ip_failed_attempts_1h: 4n });
    expect(activation.request).toEqual({ operation: 'validation' });
    expect(activation.campaign).toEqual({ metadata: { tier: 'gold' } });
    expect(activation.code).toEqual({ kind: 'unique' });
  });

  it('gives a missing variable an empty object, so has() answers false instead of failing', () => {
    const activation = toActivation({});
    for (const variable of Object.keys(RULE_VARIABLES)) expect(activation[variable]).toEqual({});
    expect(compiled('has(features.linked_accounts)').evaluate(activation)).toBe(false);
  });
});
