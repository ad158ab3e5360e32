/**
 * Loyalty: points programs (how points become coupons), customer tokens for storefronts, points
 * balances, conversions into customer-bound coupons and the coupon wallet.
 */
import { type Static, type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { MAX_TOKEN_TTL_SECONDS } from '../../security/customer-tokens.js';
import type { ProgramInput, WalletCoupon } from '../../services/points.js';
import type { Conversion, PointsMovement, PointsProgram } from '../../store/points.js';
import type { CodeRecord } from '../../store/rows.js';
import {
  actorOf,
  Currency,
  CustomerId,
  component,
  ErrorResponses,
  Id,
  IdempotencyHeaders,
  iso,
  Nullable,
  NumericCursor,
  PageQuery,
  page,
  type Routes,
  requireIdempotencyKey,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';
import { Decision, decisionJson } from './decisions.js';
import { contextInput, RequestContext, stepUpSchema } from './redemptions.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Points = Type.Integer({ minimum: 1, maximum: 1_000_000_000 });
const Bp = (description: string) => Type.Integer({ minimum: 1, maximum: 1_000_000, description });
const Tier = Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9_-]+$' });

const ProgramCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    currency: Currency,
    minor_per_point: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description: 'Minor units per point; 1 = 1 yen per point (default)',
      }),
    ),
    min_points: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'default 100' })),
    step_points: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'default 100' })),
    max_points_per_conversion: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100_000_000, description: 'default 10,000' }),
    ),
    daily_limit_points: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000_000,
        description: 'per customer per UTC day; default 30,000',
      }),
    ),
    validity_months: Type.Optional(Type.Integer({ minimum: 1, maximum: 120, description: 'default 12' })),
    multiplier_bp: Type.Optional(Bp('Program multiplier: 15000 = x1.5 (default 10000)')),
    tier_multipliers_bp: Type.Optional(
      Type.Record(Tier, Bp('Tier multiplier'), {
        maxProperties: 50,
        description: '{"gold": 12000} = gold x1.2',
      }),
    ),
    code_format: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description:
          'Placeholders {customer5} (last five digits of the customer id), {randomN} (N >= 6 random symbols, required), ' +
          "{amount} (the coupon's amount in minor units) and {points} (the points converted); " +
          'default {customer5}-{random6}-{amount}',
      }),
    ),
    refund_on_expiry: Type.Optional(
      Type.Boolean({ description: 'Return the points of coupons that expire unused (default false)' }),
    ),
  },
  strict,
);

const Program = component(
  'PointsProgram',
  Type.Object({
    id: Type.String(),
    name: Type.String(),
    campaign_id: Type.String({ description: "The campaign holding this program's coupons" }),
    currency: Currency,
    minor_per_point: Type.Integer(),
    min_points: Type.Integer(),
    step_points: Type.Integer(),
    max_points_per_conversion: Type.Integer(),
    daily_limit_points: Type.Integer(),
    validity_months: Type.Integer(),
    multiplier_bp: Type.Integer(),
    tier_multipliers_bp: Type.Record(Type.String(), Type.Integer()),
    code_format: Type.String(),
    refund_on_expiry: Type.Boolean(),
    created_at: Timestamp,
  }),
);

const Movement = component(
  'PointsMovement',
  Type.Object({
    id: Type.Integer(),
    kind: StringEnum(['credit', 'debit', 'conversion', 'expiry_refund'] as const),
    points: Type.Integer({ description: 'Signed: positive adds to the balance' }),
    balance_after: Type.Integer(),
    reason: Nullable(Type.String()),
    conversion_id: Nullable(Type.String()),
    created_at: Timestamp,
  }),
);

const Coupon = component(
  'Coupon',
  Type.Object({
    code: Type.String(),
    amount_minor: Nullable(Type.Integer()),
    currency: Currency,
    expires_at: Nullable(Timestamp),
    status: StringEnum(['unused', 'used', 'expired', 'revoked'] as const),
    used_at: Nullable(Timestamp),
    campaign_id: Type.String(),
    created_at: Timestamp,
  }),
);

const ConversionResult = component(
  'ConversionResult',
  Type.Object({
    id: Type.String(),
    customer_id: Type.String(),
    program_id: Type.String(),
    points: Type.Integer(),
    amount_minor: Type.Integer(),
    currency: Currency,
    utc_day: Type.String(),
    created_at: Timestamp,
    coupon: Type.Object({
      code: Type.String(),
      amount_minor: Type.Integer(),
      currency: Currency,
      expires_at: Timestamp,
    }),
    decision: Type.Optional(
      Type.Union([Decision], {
        description:
          'Trusted callers only: the risk decision that let it through (`review`: converted and flagged); absent for conversions made without the rules',
      }),
    ),
  }),
);

const ProgramId = Id('prg');

/** A wallet read's context travels in headers (a GET has no body). */
const WalletHeaders = Type.Object({
  'promoguard-client-ip': Type.Optional(
    Type.String({ minLength: 2, maxLength: 64, description: "Trusted callers: the shopper's IP address" }),
  ),
  'promoguard-device-id': Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'Your device fingerprint or install id' }),
  ),
  'promoguard-user-agent': Type.Optional(
    Type.String({ maxLength: 1024, description: "Trusted callers: the shopper's user agent" }),
  ),
  'promoguard-step-up': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'Trusted callers, after a 428: the `challenge.token`, once you verified the customer',
    }),
  ),
  'promoguard-step-up-method': Type.Optional(
    StringEnum(['otp', '3ds', 'password', 'biometric', 'other'] as const, {
      description: 'How you verified the customer (with promoguard-step-up)',
    }),
  ),
});

/**
 * A conversion or wallet read stopped by the rules: trusted callers see the decision (as a
 * redemption's refusal shows it); a storefront sees only the code and, for a challenge, the token.
 */
async function guarded<T>(storefront: boolean, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (
      err instanceof AppError &&
      (err.code === 'challenge_required' || err.code === 'blocked_by_rule') &&
      err.extensions.decision !== undefined
    ) {
      const { decision, ...rest } = err.extensions;
      throw new AppError(
        err.code,
        err.detail,
        storefront ? rest : { ...rest, decision: decisionJson(decision as Record<string, unknown>) },
      );
    }
    throw err;
  }
}
const CustomerParams = Type.Object({ id: CustomerId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

/** Policy fields the body leaves out stay out: the service spreads the policy over its defaults. */
function programFromBody(b: StaticDecode<typeof ProgramCreate>): ProgramInput {
  return {
    name: b.name,
    currency: b.currency,
    policy: {
      ...(b.minor_per_point === undefined ? {} : { minorPerPoint: b.minor_per_point }),
      ...(b.min_points === undefined ? {} : { minPoints: b.min_points }),
      ...(b.step_points === undefined ? {} : { stepPoints: b.step_points }),
      ...(b.max_points_per_conversion === undefined
        ? {}
        : { maxPointsPerConversion: b.max_points_per_conversion }),
      ...(b.daily_limit_points === undefined ? {} : { dailyLimitPoints: b.daily_limit_points }),
      ...(b.validity_months === undefined ? {} : { validityMonths: b.validity_months }),
      ...(b.multiplier_bp === undefined ? {} : { multiplierBp: b.multiplier_bp }),
      ...(b.tier_multipliers_bp === undefined ? {} : { tierMultipliersBp: b.tier_multipliers_bp }),
    },
    codeFormat: b.code_format,
    refundOnExpiry: b.refund_on_expiry,
  };
}

function programJson(p: PointsProgram): Static<typeof Program> {
  return {
    id: p.id,
    name: p.name,
    campaign_id: p.campaignId,
    currency: p.currency,
    minor_per_point: p.policy.minorPerPoint,
    min_points: p.policy.minPoints,
    step_points: p.policy.stepPoints,
    max_points_per_conversion: p.policy.maxPointsPerConversion,
    daily_limit_points: p.policy.dailyLimitPoints,
    validity_months: p.policy.validityMonths,
    multiplier_bp: p.policy.multiplierBp,
    tier_multipliers_bp: p.policy.tierMultipliersBp,
    code_format: p.codeFormat,
    refund_on_expiry: p.refundOnExpiry,
    created_at: p.createdAt.toISOString(),
  };
}

const movementJson = (m: PointsMovement): Static<typeof Movement> => ({
  id: m.id,
  kind: m.kind,
  points: m.points,
  balance_after: m.balanceAfter,
  reason: m.reason,
  conversion_id: m.conversionId,
  created_at: m.createdAt.toISOString(),
});

const couponJson = (c: WalletCoupon): Static<typeof Coupon> => ({
  code: c.code.code,
  amount_minor: c.amountMinor,
  currency: c.currency,
  expires_at: iso(c.expiresAt),
  status: c.status,
  used_at: iso(c.usedAt),
  campaign_id: c.code.campaignId,
  created_at: c.code.createdAt.toISOString(),
});

const conversionJson = (
  c: Conversion,
  code: CodeRecord,
  decision: Record<string, unknown> | null,
): Static<typeof ConversionResult> => ({
  ...(decision ? { decision: decisionJson(decision) } : {}),
  id: c.id,
  customer_id: c.customerId,
  program_id: c.programId,
  points: c.points,
  amount_minor: c.amountMinor,
  currency: c.currency,
  utc_day: c.utcDay,
  created_at: c.createdAt.toISOString(),
  coupon: {
    code: code.code,
    amount_minor: code.amountMinor ?? c.amountMinor,
    currency: c.currency,
    expires_at: (code.expiresAt ?? c.createdAt).toISOString(),
  },
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const loyaltyRoutes =
  (app: App): Routes =>
  async (server) => {
    const marketing = { scopes: ['marketing' as const] };
    const checkoutOrOwn = { scopes: ['checkout' as const], customer: 'path' as const };
    const readersOrOwn = { scopes: ['checkout' as const, 'marketing' as const], customer: 'path' as const };

    server.post(
      '/points-programs',
      {
        config: marketing,
        schema: {
          tags: ['loyalty'],
          summary: 'Create a conversion program (how points become coupons)',
          body: ProgramCreate,
          response: { 201: Program, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const program = await app.points.createProgram(programFromBody(request.body), actorOf(request));
        return reply.status(201).send(programJson(program));
      },
    );

    server.get(
      '/points-programs',
      {
        config: { scopes: ['marketing' as const, 'checkout' as const] },
        schema: {
          tags: ['loyalty'],
          summary: 'List conversion programs',
          response: { 200: Type.Object({ data: Type.Array(Program) }), ...ErrorResponses },
        },
      },
      async () => ({ data: (await app.points.listPrograms()).map(programJson) }),
    );

    server.get(
      '/points-programs/:id',
      {
        config: { scopes: ['marketing' as const, 'checkout' as const] },
        schema: {
          tags: ['loyalty'],
          summary: 'Read a conversion program',
          params: Type.Object({ id: ProgramId }),
          response: { 200: Program, ...ErrorResponses },
        },
      },
      async (request) => programJson(await app.points.getProgram(request.params.id)),
    );

    server.post(
      '/customer-tokens',
      {
        config: { scopes: ['checkout' as const] },
        schema: {
          tags: ['loyalty'],
          summary: 'Issue a short-lived token a storefront uses to act for one customer',
          description:
            'Your backend calls this for a logged-in customer and hands the token to the storefront, which ' +
            'sends it as `Authorization: Bearer pgc_…`. It validates codes for that customer, reads that ' +
            "customer's wallet and points and converts that customer's points — nothing else. The tier, if given, is the one conversions use.",
          body: Type.Object(
            {
              customer_id: CustomerId,
              tier: Type.Optional(Tier),
              ttl_seconds: Type.Optional(
                Type.Integer({ minimum: 30, maximum: MAX_TOKEN_TTL_SECONDS, default: 900 }),
              ),
            },
            strict,
          ),
          response: { 201: Type.Object({ token: Type.String(), expires_at: Timestamp }), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const { token, expiresAt } = app.customerTokens.issue(b.customer_id, b.ttl_seconds ?? 900, b.tier);
        return reply.status(201).send({ token, expires_at: expiresAt.toISOString() });
      },
    );

    server.post(
      '/customers/:id/points',
      {
        config: { scopes: ['checkout' as const] },
        schema: {
          tags: ['loyalty'],
          summary: 'Credit (earn) or debit points, with an Idempotency-Key',
          description:
            'A debit larger than the balance is refused (422 insufficient_points) and changes nothing.',
          params: CustomerParams,
          headers: IdempotencyHeaders,
          body: Type.Object(
            {
              type: StringEnum(['credit', 'debit'] as const),
              points: Points,
              reason: Type.String({ minLength: 1, maxLength: 200 }),
            },
            strict,
          ),
          response: {
            201: Type.Object({ customer_id: Type.String(), balance: Type.Integer(), movement: Movement }),
            ...ErrorResponses,
          },
        },
      },
      async (request, reply) => {
        const key = requireIdempotencyKey(request.headers['idempotency-key']);
        const b = request.body;
        const { movement, replayed } = await app.points.apply(
          request.params.id,
          { kind: b.type, points: b.points, reason: b.reason },
          key,
        );
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(201).send({
          customer_id: request.params.id,
          balance: movement.balanceAfter,
          movement: movementJson(movement),
        });
      },
    );

    server.get(
      '/customers/:id/points',
      {
        config: readersOrOwn,
        schema: {
          tags: ['loyalty'],
          summary: "A customer's points balance and recent movements, newest first",
          params: CustomerParams,
          querystring: Type.Object(
            {
              limit: PageQuery.limit,
              cursor: NumericCursor,
            },
            strict,
          ),
          response: {
            200: Type.Object({
              customer_id: Type.String(),
              balance: Type.Integer(),
              converted_today: Type.Integer({ description: 'Points converted this UTC day' }),
              movements: Type.Array(Movement),
              next_cursor: Nullable(Type.Integer()),
            }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const s = await app.points.summary(request.params.id, {
          limit: limit + 1,
          before: request.query.cursor,
        });
        const movements = page(s.movements, limit, movementJson, (m) => m.id);
        return {
          customer_id: request.params.id,
          balance: s.balance,
          converted_today: s.convertedToday,
          movements: movements.data,
          next_cursor: movements.next_cursor,
        };
      },
    );

    server.post(
      '/customers/:id/conversions',
      {
        config: checkoutOrOwn,
        schema: {
          tags: ['loyalty'],
          summary: 'Convert points into a single-use coupon bound to this customer',
          description:
            'Refusals (422, nothing changed): conversion_below_minimum, conversion_not_in_steps, ' +
            'conversion_above_maximum, daily_conversion_limit_exceeded (per UTC day), insufficient_points, points_program_inactive, ' +
            'unknown_tier (a tier the program does not define, matched exactly: `Gold` is not `gold`; the answer lists `known_tiers`). ' +
            'The amount is points x minor_per_point x multiplier_bp x tier multiplier, rounded down. ' +
            "Send the shopper's `context` (as for a redemption; a storefront's address is its connection): the risk " +
            "rules read it against the customer's history (device, network, card and hour new for the customer, " +
            'share of the balance, time since the last conversion). `block` is a 422 `blocked_by_rule`; `challenge` is ' +
            'a 428 `challenge_required` with `challenge.token`: verify the customer, then your backend (a checkout key; ' +
            "a storefront's `step_up` is ignored) retries with the same Idempotency-Key and `step_up`, which converts once.",
          params: CustomerParams,
          headers: IdempotencyHeaders,
          body: Type.Object(
            {
              program_id: ProgramId,
              points: Points,
              context: Type.Optional(RequestContext),
              step_up: Type.Optional(
                stepUpSchema(
                  'Checkout keys only, after a 428 `challenge_required` for this conversion: the proof satisfies its challenge rules (never a block)',
                ),
              ),
              tier: Type.Optional(
                Type.Union([Tier], {
                  description:
                    "One of the program's tiers, exactly as defined. Ignored for customer tokens (theirs counts)",
                }),
              ),
            },
            strict,
          ),
          response: { 201: ConversionResult, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const key = requireIdempotencyKey(request.headers['idempotency-key']);
        // A storefront cannot choose its own tier: the one its token was issued with counts.
        const tier = request.customer ? request.customer.tier : request.body.tier;
        const storefront = request.customer !== null;
        const result = await guarded(storefront, () =>
          app.points.convert(
            request.params.id,
            { programId: request.body.program_id, points: request.body.points, tier },
            key,
            {
              context: contextInput(request.body.context, storefront ? request.ip : undefined),
              // The storefront holds the session a thief may have stolen: only the merchant's backend,
              // having verified the customer, may prove the step-up.
              stepUp: storefront ? undefined : request.body.step_up,
              channel: storefront ? 'storefront' : 'checkout',
            },
          ),
        );
        if (result.replayed) reply.header('idempotent-replayed', 'true');
        return reply
          .status(201)
          .send(conversionJson(result.conversion, result.code, storefront ? null : result.decision));
      },
    );

    server.get(
      '/customers/:id/coupons',
      {
        config: readersOrOwn,
        schema: {
          tags: ['loyalty'],
          summary: "The customer's coupon wallet: codes bound to them, newest first",
          description:
            "Each read passes the risk rules with its context, recorded with the decision: a storefront's address " +
            "is its connection and its user agent the User-Agent header; a checkout key forwards the shopper's " +
            'in promoguard-client-ip and promoguard-user-agent. promoguard-device-id names the device. `block` is ' +
            'a 422 `blocked_by_rule`; `challenge` a 428 `challenge_required`, retried by a checkout key with ' +
            'promoguard-step-up and promoguard-step-up-method.',
          params: CustomerParams,
          headers: WalletHeaders,
          querystring: Type.Object(
            {
              limit: PageQuery.limit,
              cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^code_[0-9A-Z]{26}$' })),
            },
            strict,
          ),
          response: {
            200: Type.Object({ data: Type.Array(Coupon), next_cursor: Nullable(Type.String()) }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const storefront = request.customer !== null;
        const h = request.headers;
        const token = h['promoguard-step-up'];
        const coupons = await guarded(storefront, () =>
          app.points.wallet(
            request.params.id,
            { limit: limit + 1, before: request.query.cursor },
            {
              context: {
                ip: storefront ? request.ip : h['promoguard-client-ip'],
                deviceId: h['promoguard-device-id'],
                userAgent: storefront
                  ? (request.headers['user-agent'] as string | undefined)
                  : h['promoguard-user-agent'],
              },
              stepUp:
                !storefront && token !== undefined
                  ? { challenge: token, method: h['promoguard-step-up-method'] ?? 'other' }
                  : undefined,
              channel: storefront ? 'storefront' : 'checkout',
            },
          ),
        );
        return page(coupons, limit, couponJson, (c) => c.code.id);
      },
    );
  };
