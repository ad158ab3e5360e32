/** Checkout: validations (no side effect), redemptions and their rollback. */
import { type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { REFUSAL_REASONS } from '../../domain/campaign.js';
import { STEP_UP_METHODS } from '../../domain/risk.js';
import { AppError } from '../../errors.js';
import { decisionRecord } from '../../risk/engine.js';
import type { RequestContextInput } from '../../security/request-context.js';
import type { CheckoutRequest } from '../../services/redemptions.js';
import type { Redemption as RedemptionRecord } from '../../store/rows.js';
import {
  AmountMinor,
  CampaignId,
  Currency,
  CustomerId,
  component,
  ErrorResponses,
  IdempotencyHeaders,
  iso,
  Nullable,
  Page,
  PageQuery,
  page,
  Reason,
  RedemptionId,
  type Routes,
  requireIdempotencyKey,
  StringEnum,
  strict,
  Text,
  Timestamp,
} from '../shared.js';
import { Decision, decisionJson } from './decisions.js';

/** What untrusted eyes may read; trusted checkout keys also get the `reason` code. */
export const REFUSAL_MESSAGE = 'This code cannot be used';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

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

/** The proof of a step-up after a 428 `challenge_required` (see security/step-up.ts). */
export function stepUpSchema(description: string) {
  return Type.Object(
    {
      challenge: Type.String({
        minLength: 1,
        maxLength: 2048,
        description: 'The `challenge.token` of the 428 `challenge_required` answer',
      }),
      method: StringEnum(STEP_UP_METHODS, { description: 'How you verified the shopper' }),
    },
    { ...strict, description },
  );
}

/** The service's form of a request context; a storefront's own connection is its address. */
export function contextInput(
  c: StaticDecode<typeof RequestContext> | undefined,
  clientIp?: string,
): RequestContextInput {
  return {
    // A storefront's own connection is its address; a checkout backend forwards the shopper's.
    ip: clientIp ?? c?.ip,
    deviceId: c?.device_id,
    userAgent: c?.user_agent,
    email: c?.email,
    phone: c?.phone,
    shippingAddress: c?.shipping_address,
    paymentFingerprint: c?.payment_fingerprint,
    accountCreatedAt: c?.account_created_at,
  };
}

export const CheckoutBody = component(
  'CheckoutBody',
  Type.Object(
    {
      code: Type.String({ minLength: 1, maxLength: 256 }),
      customer: Customer,
      cart: Cart,
      order_id: Type.Optional(Text(128)),
      context: Type.Optional(RequestContext),
      step_up: Type.Optional(
        stepUpSchema(
          'Send after a 428 `challenge_required`, once you verified the shopper (one-time code, 3-D Secure, …): ' +
            'the proof satisfies the challenge rules for this customer and code (never a block).',
        ),
      ),
    },
    strict,
  ),
);

const ValidationResult = component(
  'ValidationResult',
  Type.Union([
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
        Type.Union([StringEnum(REFUSAL_REASONS)], { description: 'Given to trusted (API key) callers only' }),
      ),
      message: Type.String(),
    }),
  ]),
);

export const Redemption = component(
  'Redemption',
  Type.Object({
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
  }),
);

const Params = Type.Object({ id: RedemptionId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

function checkoutRequest(body: StaticDecode<typeof CheckoutBody>, clientIp?: string): CheckoutRequest {
  const c = body.context;
  return {
    code: body.code,
    customer: {
      id: body.customer.id,
      segment: body.customer.segment,
      region: body.customer.region,
      firstOrder: body.customer.first_order,
    },
    cart: {
      currency: body.cart.currency,
      subtotalMinor: body.cart.subtotal_minor,
      shippingMinor: body.cart.shipping_minor ?? 0,
    },
    items: body.cart.items?.map((i) => ({
      sku: i.sku,
      quantity: i.quantity,
      unitPriceMinor: i.unit_price_minor,
    })),
    orderId: body.order_id,
    stepUp: body.step_up,
    context: contextInput(c, clientIp),
  };
}

/** `decision`: given for a single redemption (undefined in lists, where it is left out). */
export function redemptionJson(r: RedemptionRecord, decision?: Record<string, unknown> | null) {
  return {
    ...(decision !== undefined ? { decision: decision === null ? null : decisionJson(decision) } : {}),
    review_status: r.reviewStatus,
    id: r.id,
    status: r.status,
    campaign_id: r.campaignId,
    code_id: r.codeId,
    customer_id: r.customerId,
    order_id: r.orderId,
    currency: r.currency,
    subtotal_minor: r.subtotalMinor,
    discount_minor: r.discountMinor,
    created_at: r.createdAt.toISOString(),
    rolled_back_at: iso(r.rolledBackAt),
    rollback_reason: r.rollbackReason,
  };
}

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const redemptionRoutes =
  (app: App): Routes =>
  async (server) => {
    /** A single redemption with its stored risk decision. */
    const withDecision = async (r: RedemptionRecord) =>
      redemptionJson(r, r.decisionId ? (await app.reviews.decision(r.decisionId)).decision : null);

    const checkout = { scopes: ['checkout' as const] };
    const checkoutOrStorefront = { scopes: ['checkout' as const], customer: 'body' as const };
    const readers = { scopes: ['checkout' as const, 'marketing' as const] };

    server.post(
      '/validations',
      {
        config: checkoutOrStorefront,
        schema: {
          tags: ['checkout'],
          summary: 'Would this code apply to this cart? No side effect.',
          description:
            'Trusted checkout keys get the refusal `reason`. A storefront holding a customer token (for the ' +
            'customer in the body) gets one uniform answer for every refusal — unknown, expired, used-up, ' +
            'revoked or not-yours all read "This code cannot be used" with the same status and the same ' +
            'database work. Attempts count toward the rate limits (429 with Retry-After).',
          body: CheckoutBody,
          response: { 200: ValidationResult, ...ErrorResponses },
        },
      },
      async (request) => {
        const storefront = request.customer;
        const result = await app.redemptions.validate(
          checkoutRequest(request.body, storefront ? request.ip : undefined),
          { untrusted: storefront !== null },
        );
        if (!result.valid) {
          // Untrusted callers get one answer for every refusal: no reason, same status, same shape.
          return storefront
            ? { valid: false as const, message: REFUSAL_MESSAGE }
            : { valid: false as const, reason: result.reason, message: REFUSAL_MESSAGE };
        }
        return {
          valid: true as const,
          discount_minor: result.discountMinor,
          currency: result.currency,
          campaign_id: result.campaignId,
          // The rules' view is for trusted callers: a storefront learns nothing about them.
          ...(storefront ? {} : { decision: decisionJson(decisionRecord(result.decision)) }),
        };
      },
    );

    server.post(
      '/redemptions',
      {
        config: checkout,
        schema: {
          tags: ['checkout'],
          summary: 'Redeem a code for an order',
          description:
            'Atomic: code uses, campaign cap, budget, per-customer, per-person and partner caps and the ' +
            'per-minute throttle are each enforced by one conditional statement. Attempts count toward the ' +
            'rate limits and lockouts (429 with Retry-After). Send an Idempotency-Key: a repeat (also a ' +
            'concurrent one, also from a caller limited since) returns the ' +
            'first redemption with `Idempotent-Replayed: true` and changes nothing. A refusal is a 422 ' +
            '`redemption_refused` with a `reason`; refusals change nothing, so a retry is decided afresh. ' +
            'The risk rules run after eligibility: `block` is a refusal with reason `blocked_by_rule`; ' +
            '`challenge` is a 428 `challenge_required` with `challenge.token` — verify the shopper, then ' +
            'retry with `step_up`; `review` makes the redemption with `review_status: "pending"` (discount ' +
            'granted, flag the order; an analyst may reject it, which rolls it back). The decision — every ' +
            'rule that fired and the feature values it saw — is in `decision`.',
          headers: IdempotencyHeaders,
          body: CheckoutBody,
          response: { 201: Redemption, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const key = requireIdempotencyKey(request.headers['idempotency-key']);
        const result = await app.redemptions.redeem(checkoutRequest(request.body), key);
        if (!result.ok) {
          if (result.reason === 'challenge_required') {
            throw new AppError('challenge_required', 'verify the shopper, then retry with step_up', {
              challenge: {
                token: result.challenge.token,
                expires_at: result.challenge.expiresAt.toISOString(),
              },
              decision: decisionJson(decisionRecord(result.decision)),
            });
          }
          throw new AppError('redemption_refused', REFUSAL_MESSAGE, {
            reason: result.reason,
            ...(result.decision ? { decision: decisionJson(decisionRecord(result.decision)) } : {}),
          });
        }
        if (result.replayed) {
          reply.header('idempotent-replayed', 'true');
          return reply.status(201).send(await withDecision(result.redemption));
        }
        return reply
          .status(201)
          .send(redemptionJson(result.redemption, result.decision ? decisionRecord(result.decision) : null));
      },
    );

    server.get(
      '/redemptions',
      {
        config: readers,
        schema: {
          tags: ['checkout'],
          summary: 'List redemptions, newest first, of a campaign and/or a customer',
          querystring: Type.Object(
            { ...PageQuery, campaign_id: Type.Optional(CampaignId), customer_id: Type.Optional(CustomerId) },
            strict,
          ),
          response: { 200: Page(Redemption), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.redemptions.list({
          campaignId: request.query.campaign_id,
          customerId: request.query.customer_id,
          limit: limit + 1,
          before: request.query.cursor,
        });
        return page(items, limit, (r) => redemptionJson(r));
      },
    );

    server.get(
      '/redemptions/:id',
      {
        config: readers,
        schema: {
          tags: ['checkout'],
          summary: 'Read a redemption',
          params: Params,
          response: { 200: Redemption, ...ErrorResponses },
        },
      },
      async (request) => withDecision(await app.redemptions.get(request.params.id)),
    );

    server.post(
      '/redemptions/:id/rollback',
      {
        config: checkout,
        schema: {
          tags: ['checkout'],
          summary: 'Roll back a redemption (order cancelled, payment failed)',
          description:
            'Restores the code use, the campaign cap and budget, and the per-customer, per-person and partner counts exactly once, ' +
            'with reversing ledger entries. Repeating it returns the rolled-back redemption unchanged.',
          params: Params,
          body: Reason,
          response: { 200: Redemption, ...ErrorResponses },
        },
      },
      async (request) =>
        redemptionJson(await app.redemptions.rollback(request.params.id, request.body.reason ?? null)),
    );
  };
