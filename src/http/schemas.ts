/**
 * Request and response schemas. Each gives the route its validation (unknown fields are rejected),
 * its TypeScript types and its part of the served OpenAPI document.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { CAMPAIGN_STATUSES, REFUSAL_REASONS } from '../domain/campaign.js';
import { MAX_AMOUNT_MINOR, MAX_BASIS_POINTS } from '../domain/money.js';
import { RISK_ACTIONS, RULE_MODES, STEP_UP_METHODS } from '../domain/risk.js';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { MAX_EXPRESSION_LENGTH } from '../risk/rule-language.js';

export const strict = { additionalProperties: false } as const;

/** A string that is one of `values`, typed as their union (`Type.Literal` over `.map` would lose it). */
export const StringEnum = <const T extends readonly string[]>(
  values: T,
  options: { description?: string } = {},
) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const AmountMinor = Type.Integer({
  minimum: 0,
  maximum: MAX_AMOUNT_MINOR,
  description: 'An amount in minor units of the currency (cents, yen): an integer, never a fraction.',
});
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code, e.g. USD' });
export const Timestamp = Type.String({ format: 'date-time', description: 'UTC instant, RFC 3339' });
const Text = (maxLength: number, description?: string) =>
  Type.String({
    minLength: 1,
    maxLength,
    pattern: '^[^\\u0000-\\u001f]*$',
    ...(description ? { description } : {}),
  });
export const CustomerId = Text(128, 'Your id of the customer');
const Id = (prefix: string) => Type.String({ pattern: `^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$` });
export const CampaignId = Id('cmp');
export const RedemptionId = Id('red');
export const Metadata = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), {
  maxProperties: 50,
  description: 'Free-form string pairs for your own use',
});

export const Discount = Type.Union(
  [
    Type.Object({ type: Type.Literal('fixed_amount'), amount_minor: AmountMinor }, strict),
    Type.Object(
      {
        type: Type.Literal('percentage'),
        basis_points: Type.Integer({ minimum: 1, maximum: MAX_BASIS_POINTS, description: '1500 = 15 %' }),
        max_discount_minor: Type.Optional(Nullable(AmountMinor)),
      },
      strict,
    ),
    Type.Object({ type: Type.Literal('free_shipping') }, strict),
  ],
  {
    description:
      'Percentages are rounded half to even to a whole minor unit; no discount exceeds the subtotal ' +
      '(free shipping discounts exactly cart.shipping_minor).',
  },
);

const IdList = Type.Array(Text(128), { maxItems: 10_000, uniqueItems: true });
export const Eligibility = Type.Object(
  {
    customer_ids: Type.Optional(Nullable(IdList)),
    segments: Type.Optional(Nullable(Type.Array(Text(64), { maxItems: 100 }))),
    regions: Type.Optional(Nullable(Type.Array(Text(64), { maxItems: 300 }))),
    first_order_only: Type.Optional(Type.Boolean()),
  },
  { ...strict, description: 'null (or absent) means no restriction' },
);

const limitFields = {
  starts_at: Type.Optional(Timestamp),
  ends_at: Type.Optional(Nullable(Timestamp)),
  redemption_cap: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 2_000_000_000 }))),
  budget_minor: Type.Optional(Nullable(AmountMinor)),
  per_customer_cap: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000 }))),
  per_person_cap: Type.Optional(
    Nullable(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description:
          'Redemptions per person: customers sharing an email, phone, device, card or address count as one',
      }),
    ),
  ),
  throttle_per_minute: Type.Optional(
    Nullable(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        description: 'At most this many redemptions per UTC minute',
      }),
    ),
  ),
  min_order_minor: Type.Optional(Nullable(AmountMinor)),
  eligibility: Type.Optional(Eligibility),
  metadata: Type.Optional(Metadata),
};

export const CampaignCreate = Type.Object(
  {
    name: Text(200),
    currency: Currency,
    discount: Discount,
    status: Type.Optional(StringEnum(['draft', 'active'] as const, { description: 'default draft' })),
    ...limitFields,
  },
  strict,
);
export type CampaignCreate = Static<typeof CampaignCreate>;

export const CampaignStatus = StringEnum(CAMPAIGN_STATUSES);

export const CampaignPatch = Type.Object(
  {
    name: Type.Optional(Text(200)),
    discount: Type.Optional(Discount),
    status: Type.Optional(CampaignStatus),
    ...limitFields,
  },
  { ...strict, minProperties: 1 },
);
export type CampaignPatch = Static<typeof CampaignPatch>;

export const Campaign = Type.Object({
  id: CampaignId,
  name: Type.String(),
  status: CampaignStatus,
  currency: Currency,
  discount: Discount,
  starts_at: Timestamp,
  ends_at: Nullable(Timestamp),
  redemption_cap: Nullable(Type.Integer()),
  budget_minor: Nullable(Type.Integer()),
  per_customer_cap: Nullable(Type.Integer()),
  per_person_cap: Nullable(Type.Integer()),
  throttle_per_minute: Nullable(Type.Integer()),
  min_order_minor: Nullable(Type.Integer()),
  eligibility: Type.Object({
    customer_ids: Nullable(Type.Array(Type.String())),
    segments: Nullable(Type.Array(Type.String())),
    regions: Nullable(Type.Array(Type.String())),
    first_order_only: Type.Boolean(),
  }),
  redemptions_used: Type.Integer({ description: 'Redemptions in force (rolled-back ones excluded)' }),
  spent_minor: Type.Integer({ description: 'Discount given by redemptions in force' }),
  metadata: Type.Record(Type.String(), Type.String()),
  version: Type.Integer({ description: 'Bumped by every change of the terms' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const Reason = Type.Object({ reason: Type.Optional(Text(500, 'Why; kept in the audit log')) }, strict);

export const Code = Type.Object({
  id: Type.String(),
  campaign_id: CampaignId,
  batch_id: Nullable(Type.String()),
  code: Type.String({ description: 'As shown to customers' }),
  normalized: Type.String({ description: 'Upper case, separators removed: how codes are matched' }),
  kind: Type.Union([Type.Literal('public'), Type.Literal('unique')]),
  max_uses: Nullable(Type.Integer()),
  uses: Type.Integer(),
  customer_id: Nullable(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
  partner: Nullable(Type.String()),
  amount_minor: Nullable(
    Type.Integer({
      description: 'A fixed amount of this code (loyalty coupons); null = the campaign discount',
    }),
  ),
  expires_at: Nullable(
    Type.String({ format: 'date-time', description: "End of this code's own validity, if any" }),
  ),
  created_at: Timestamp,
  revoked_at: Nullable(Timestamp),
});

export const Partner = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: 'The partner channel the code is issued to: revocable and cappable on its own',
});

const CodeSpec = Type.Object(
  {
    code: Text(256, 'Letters and digits; case, spaces and - _ . / are ignored when matching'),
    max_uses: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 2_000_000_000 }))),
    customer_id: Type.Optional(Nullable(CustomerId)),
    partner: Type.Optional(Nullable(Partner)),
  },
  strict,
);

export const MAX_HTTP_GENERATE = 100_000;
export const MAX_HTTP_IMPORT = 10_000;

export const CodesCreate = Type.Union([
  Type.Object(
    { ...CodeSpec.properties },
    { ...strict, description: 'One chosen code (no max_uses = public multi-use)' },
  ),
  Type.Object(
    {
      generate: Type.Object(
        {
          count: Type.Integer({
            minimum: 1,
            maximum: MAX_HTTP_GENERATE,
            description: 'Use the CLI for larger batches',
          }),
          prefix: Type.Optional(Type.String({ maxLength: 16, pattern: '^[A-Za-z0-9]*$' })),
          random_length: Type.Optional(
            Type.Integer({ minimum: 8, maximum: 32, default: 12, description: '5 bits each' }),
          ),
          max_uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
          customer_id: Type.Optional(Nullable(CustomerId)),
          partner: Type.Optional(Nullable(Partner)),
        },
        strict,
      ),
    },
    { ...strict, description: 'Generate unique codes with a check symbol' },
  ),
  Type.Object(
    { codes: Type.Array(CodeSpec, { minItems: 1, maxItems: MAX_HTTP_IMPORT }) },
    { ...strict, description: 'Import chosen codes, all or nothing' },
  ),
  Type.Object(
    {
      csv: Type.String({
        minLength: 1,
        maxLength: 2_000_000,
        description:
          'CSV with a header: code[,customer_id][,max_uses][,partner][,status] (status revoked stays revoked)',
      }),
    },
    { ...strict, description: 'Import chosen codes from CSV, all or nothing' },
  ),
]);
export type CodesCreate = Static<typeof CodesCreate>;

export const CodesCreated = Type.Union([
  Code,
  Type.Object({
    batch_id: Type.String(),
    count: Type.Integer(),
    prefix: Type.String(),
    random_length: Type.Integer(),
  }),
  Type.Object({ imported: Type.Integer() }),
]);

const Customer = Type.Object(
  {
    id: CustomerId,
    segment: Type.Optional(Text(64)),
    region: Type.Optional(Text(64)),
    first_order: Type.Optional(Type.Boolean({ description: 'Asserted by your backend' })),
  },
  strict,
);

const LineItem = Type.Object(
  { sku: Text(128), quantity: Type.Integer({ minimum: 1, maximum: 100_000 }), unit_price_minor: AmountMinor },
  strict,
);

const Cart = Type.Object(
  {
    currency: Currency,
    subtotal_minor: AmountMinor,
    shipping_minor: Type.Optional(AmountMinor),
    items: Type.Optional(Type.Array(LineItem, { maxItems: 500 })),
  },
  strict,
);

export const RequestContext = Type.Object(
  {
    ip: Type.Optional(
      Type.String({ minLength: 2, maxLength: 64, description: "The shopper's IP address (IPv4 or IPv6)" }),
    ),
    device_id: Type.Optional(Text(200, 'Your device fingerprint or install id')),
    user_agent: Type.Optional(Type.String({ maxLength: 1024 })),
    email: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
    phone: Type.Optional(Type.String({ minLength: 4, maxLength: 40 })),
    shipping_address: Type.Optional(
      Type.Object(
        {
          line1: Text(200),
          line2: Type.Optional(Type.String({ maxLength: 200 })),
          city: Type.Optional(Type.String({ maxLength: 100 })),
          region: Type.Optional(Type.String({ maxLength: 100 })),
          postal_code: Type.Optional(Type.String({ maxLength: 20 })),
          country: Type.Optional(Type.String({ maxLength: 2, description: 'ISO 3166-1 alpha-2' })),
        },
        strict,
      ),
    ),
    payment_fingerprint: Type.Optional(
      Text(200, 'A stable fingerprint of the payment instrument (e.g. card fingerprint)'),
    ),
    account_created_at: Type.Optional(Timestamp),
  },
  {
    ...strict,
    description:
      'Who is asking. Identifiers are normalized and kept only as keyed hashes; customers sharing an email, ' +
      'phone, device, payment fingerprint or shipping address are linked into one person. For storefront ' +
      '(customer token) callers the client address is taken from the connection, not from here.',
  },
);

export const CheckoutBody = Type.Object(
  {
    code: Type.String({ minLength: 1, maxLength: 256 }),
    customer: Customer,
    cart: Cart,
    order_id: Type.Optional(Text(128)),
    context: Type.Optional(RequestContext),
    step_up: Type.Optional(
      Type.Object(
        {
          challenge: Type.String({
            minLength: 1,
            maxLength: 2048,
            description: 'The `challenge.token` of the 428 `challenge_required` answer',
          }),
          method: StringEnum(STEP_UP_METHODS, { description: 'How you verified the shopper' }),
        },
        {
          ...strict,
          description:
            'Send after a 428 `challenge_required`, once you verified the shopper (one-time code, 3-D Secure, …): ' +
            'the proof satisfies the challenge rules for this customer and code (never a block).',
        },
      ),
    ),
  },
  strict,
);
export type CheckoutBody = Static<typeof CheckoutBody>;

export const RiskAction = StringEnum(RISK_ACTIONS);
export const RuleMode = StringEnum(RULE_MODES);
export const FeatureValues = Type.Record(Type.String(), Type.Number());

export const DecisionId = Id('dec');

export const Decision = Type.Object(
  {
    id: DecisionId,
    action: RiskAction,
    because: Type.Array(Type.String(), { description: 'The enforced rules that set the action' }),
    rules: Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        action: RiskAction,
        mode: RuleMode,
        reason: Type.String(),
        result: StringEnum(['fired', 'unavailable', 'error'] as const, {
          description:
            '`unavailable`: a feature it reads could not be computed (an enforced rule then sends the attempt to review); `error`: it failed at run time and did not fire',
        }),
        detail: Type.Optional(Type.String()),
        features: FeatureValues,
      }),
      { description: 'Every rule that fired (enforced or shadow), could not be evaluated, or failed' },
    ),
    features: FeatureValues,
    unavailable_features: Type.Array(Type.String()),
    allow_listed: Type.Boolean(),
    challenge_satisfied: Type.Boolean(),
    step_up: Nullable(Type.String()),
  },
  { description: 'The risk decision: the action, every rule that fired and the feature values they saw' },
);

export const RefusalReason = StringEnum(REFUSAL_REASONS);

export const ValidationResult = Type.Union([
  Type.Object({
    valid: Type.Literal(true),
    discount_minor: Type.Integer(),
    currency: Currency,
    campaign_id: CampaignId,
    decision: Type.Optional(
      Type.Union([Decision], {
        description:
          'Trusted callers only. `review`: a redemption would be held for review; `challenge`: it would need a step-up',
      }),
    ),
  }),
  Type.Object({
    valid: Type.Literal(false),
    reason: Type.Optional(
      Type.Union([RefusalReason], { description: 'Given to trusted (API key) callers only' }),
    ),
    message: Type.String(),
  }),
]);

export const Redemption = Type.Object({
  id: RedemptionId,
  status: Type.Union([Type.Literal('redeemed'), Type.Literal('rolled_back')]),
  campaign_id: CampaignId,
  code_id: Type.String(),
  customer_id: Type.String(),
  order_id: Nullable(Type.String()),
  currency: Currency,
  subtotal_minor: Type.Integer(),
  discount_minor: Type.Integer(),
  created_at: Timestamp,
  rolled_back_at: Nullable(Timestamp),
  rollback_reason: Nullable(Type.String()),
  review_status: Nullable(
    StringEnum(['pending', 'approved', 'rejected'] as const, {
      description:
        '`pending`: held for review — the discount is granted, flag the order; a rejection rolls the redemption back',
    }),
  ),
  decision: Type.Optional(
    Nullable(
      Type.Union([Decision], {
        description:
          'On a single redemption (not in lists); null when no rules ran (made before the risk engine)',
      }),
    ),
  ),
});

/** Retryable writes need the header; the schema leaves it optional so its absence gets this clear code. */
export function requireIdempotencyKey(key: string | undefined): string {
  if (!key) throw new AppError('idempotency_key_required');
  return key;
}

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description: 'Required; printable ASCII',
    }),
  ),
});

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    next_cursor: Nullable(
      Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' }),
    ),
  });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z]+_[0-9A-Z]{26}$' })),
};

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: StringEnum(Object.keys(ERROR_CODES) as ErrorCode[]),
    detail: Type.Optional(Type.String()),
    request_id: Type.String(),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

export const ErrorResponses = {
  400: Problem,
  401: Problem,
  403: Problem,
  404: Problem,
  409: Problem,
  422: Problem,
  428: Problem,
  429: Problem,
};

export const RuleId = Type.String({ pattern: '^rule_[0-9A-Za-z_]{1,64}$' });

export const Expression = Type.String({
  minLength: 1,
  maxLength: MAX_EXPRESSION_LENGTH,
  description: 'A CEL expression yielding a bool over features, request, order, campaign, code and customer',
});

export const Rule = Type.Object({
  id: RuleId,
  name: Type.String(),
  description: Type.String(),
  expression: Type.String(),
  action: RiskAction,
  reason: Type.String(),
  mode: RuleMode,
  campaign_id: Nullable(CampaignId),
  expires_at: Nullable(Timestamp),
  enabled: Type.Boolean(),
  pack: Nullable(Type.String({ description: '`default` for a shipped rule' })),
  version: Type.Integer(),
  created_by: Type.String(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const RuleFields = {
  name: Text(120),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  expression: Expression,
  action: RiskAction,
  reason: Text(500, 'Shown to analysts with every decision the rule takes part in'),
  mode: RuleMode,
  campaign_id: Type.Optional(Nullable(CampaignId)),
  expires_at: Type.Optional(Nullable(Timestamp)),
  enabled: Type.Optional(Type.Boolean()),
};

export const RuleCreate = Type.Object(RuleFields, strict);
export const RulePatch = Type.Object(
  {
    name: Type.Optional(RuleFields.name),
    description: RuleFields.description,
    expression: Type.Optional(Expression),
    action: Type.Optional(RiskAction),
    reason: Type.Optional(RuleFields.reason),
    mode: Type.Optional(RuleMode),
    campaign_id: RuleFields.campaign_id,
    expires_at: RuleFields.expires_at,
    enabled: RuleFields.enabled,
  },
  { ...strict, minProperties: 1 },
);

export const Period = {
  from: Timestamp,
  to: Timestamp,
};

export const BacktestResult = Type.Object({
  from: Timestamp,
  to: Timestamp,
  evaluated: Type.Integer(),
  hits: Type.Integer(),
  unavailable: Type.Integer(),
  errors: Type.Integer(),
  hits_by_outcome: Type.Record(Type.String(), Type.Integer()),
  labeled: Type.Object({ abuse: Type.Integer(), legitimate: Type.Integer() }),
  true_positives: Type.Integer(),
  false_positives: Type.Integer(),
  false_negatives: Type.Integer(),
  precision: Nullable(Type.Number()),
  recall: Nullable(Type.Number()),
  sample_hits: Type.Array(Type.String()),
  truncated: Type.Boolean(),
});

export const Label = StringEnum(['abuse', 'legitimate'] as const);

export const StoredDecision = Type.Object({
  id: DecisionId,
  created_at: Timestamp,
  operation: Type.String(),
  campaign_id: Type.String(),
  code_id: Type.String(),
  customer_id: Type.String(),
  redemption_id: Nullable(Type.String()),
  action: RiskAction,
  outcome: StringEnum(['redeemed', 'blocked', 'challenged'] as const),
  label: Nullable(Label),
  decision: Decision,
  inputs: Type.Record(Type.String(), Type.Unknown(), {
    description: 'Everything the rules could read: features, request, order, campaign, code, customer',
  }),
});
