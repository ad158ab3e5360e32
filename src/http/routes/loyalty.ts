/**
 * Loyalty: points programs (how points become coupons), customer tokens for storefronts, points
 * balances, conversions into customer-bound coupons and the coupon wallet.
 */
import { type Static, type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
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
  }),
);

const ProgramId = Id('prg');
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

const conversionJson = (c: Conversion, code: CodeRecord): Static<typeof ConversionResult> => ({
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
            'The amount is points x minor_per_point x multiplier_bp x tier multiplier, rounded down.',
          params: CustomerParams,
          headers: IdempotencyHeaders,
          body: Type.Object(
            {
              program_id: ProgramId,
              points: Points,
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
        const result = await app.points.convert(
          request.params.id,
          { programId: request.body.program_id, points: request.body.points, tier },
          key,
        );
        if (result.replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(201).send(conversionJson(result.conversion, result.code));
      },
    );

    server.get(
      '/customers/:id/coupons',
      {
        config: readersOrOwn,
        schema: {
          tags: ['loyalty'],
          summary: "The customer's coupon wallet: codes bound to them, newest first",
          params: CustomerParams,
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
        const coupons = await app.points.wallet(request.params.id, {
          limit: limit + 1,
          before: request.query.cursor,
        });
        return page(coupons, limit, couponJson, (c) => c.code.id);
      },
    );
  };
