/** Campaigns: their terms, their lifecycle and the kill switch. */
import type { FastifyReply } from 'fastify';
import { type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { CAMPAIGN_STATUSES, type Eligibility } from '../../domain/campaign.js';
import { type DiscountRule, MAX_BASIS_POINTS } from '../../domain/money.js';
import type {
  CampaignChange,
  CampaignInput,
  CampaignPatch as ServicePatch,
} from '../../services/campaigns.js';
import type { CampaignRecord } from '../../store/rows.js';
import {
  AmountMinor,
  actorOf,
  CampaignId,
  Currency,
  component,
  ErrorResponses,
  iso,
  Nullable,
  Page,
  PageQuery,
  page,
  Reason,
  type Routes,
  StringEnum,
  strict,
  Text,
  Timestamp,
} from '../shared.js';
import { Approval, approvalJson } from './approvals.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

export const Discount = component(
  'Discount',
  Type.Union(
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
  ),
);

const IdList = Type.Array(Text(128), { maxItems: 10_000, uniqueItems: true });
const EligibilityBody = Type.Object(
  {
    customer_ids: Type.Optional(Nullable(IdList)),
    segments: Type.Optional(Nullable(Type.Array(Text(64), { maxItems: 100 }))),
    regions: Type.Optional(Nullable(Type.Array(Text(64), { maxItems: 300 }))),
    first_order_only: Type.Optional(Type.Boolean()),
  },
  { ...strict, description: 'null (or absent) means no restriction' },
);

const Metadata = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), {
  maxProperties: 50,
  description: 'Free-form string pairs for your own use',
});

const PlannedPeakBody = Type.Object(
  {
    starts_at: Timestamp,
    ends_at: Timestamp,
    expected_per_minute: Type.Integer({
      minimum: 1,
      maximum: 10_000_000,
      description: 'Redemptions per minute the campaign expects at the peak',
    }),
  },
  strict,
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
  eligibility: Type.Optional(EligibilityBody),
  metadata: Type.Optional(Metadata),
  planned_peaks: Type.Optional(
    Type.Array(PlannedPeakBody, {
      maxItems: 50,
      description:
        'Periods the campaign expects to redeem fast (a flash sale): spike alerts and detectors read them as planned',
    }),
  ),
};

export const CampaignCreate = component(
  'CampaignCreate',
  Type.Object(
    {
      name: Text(200),
      currency: Currency,
      discount: Discount,
      status: Type.Optional(StringEnum(['draft', 'active'] as const, { description: 'default draft' })),
      ...limitFields,
    },
    strict,
  ),
);

const CampaignStatus = StringEnum(CAMPAIGN_STATUSES);

const CampaignPatch = Type.Object(
  {
    name: Type.Optional(Text(200)),
    discount: Type.Optional(Discount),
    status: Type.Optional(CampaignStatus),
    ...limitFields,
  },
  { ...strict, minProperties: 1 },
);

export const Campaign = component(
  'Campaign',
  Type.Object({
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
    planned_peaks: Type.Array(PlannedPeakBody),
    version: Type.Integer({ description: 'Bumped by every change of the terms' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  }),
);

const Params = Type.Object({ id: CampaignId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

function discountFromBody(d: StaticDecode<typeof Discount>): DiscountRule {
  switch (d.type) {
    case 'fixed_amount':
      return { type: 'fixed_amount', amountMinor: d.amount_minor };
    case 'percentage':
      return {
        type: 'percentage',
        basisPoints: d.basis_points,
        maxDiscountMinor: d.max_discount_minor ?? null,
      };
    default:
      return { type: 'free_shipping' };
  }
}

function eligibilityFromBody(
  e: StaticDecode<typeof EligibilityBody> | undefined,
): Partial<Eligibility> | undefined {
  if (!e) return undefined;
  const out: Partial<Eligibility> = {};
  if (e.customer_ids !== undefined) out.customerIds = e.customer_ids;
  if (e.segments !== undefined) out.segments = e.segments;
  if (e.regions !== undefined) out.regions = e.regions;
  if (e.first_order_only !== undefined) out.firstOrderOnly = e.first_order_only;
  return out;
}

/** The terms of a create or a patch body as the service takes them (absent fields stay undefined). */
function termsFromBody(b: StaticDecode<typeof CampaignCreate>): Omit<CampaignInput, 'currency'>;
function termsFromBody(b: StaticDecode<typeof CampaignPatch>): ServicePatch;
function termsFromBody(b: StaticDecode<typeof CampaignPatch>): ServicePatch {
  return {
    name: b.name,
    discount: b.discount === undefined ? undefined : discountFromBody(b.discount),
    status: b.status,
    startsAt: b.starts_at,
    endsAt: b.ends_at,
    redemptionCap: b.redemption_cap,
    budgetMinor: b.budget_minor,
    perCustomerCap: b.per_customer_cap,
    perPersonCap: b.per_person_cap,
    throttlePerMinute: b.throttle_per_minute,
    minOrderMinor: b.min_order_minor,
    eligibility: eligibilityFromBody(b.eligibility),
    metadata: b.metadata,
    plannedPeaks: b.planned_peaks?.map((p) => ({
      startsAt: p.starts_at,
      endsAt: p.ends_at,
      expectedPerMinute: p.expected_per_minute,
    })),
  };
}

function discountJson(d: DiscountRule) {
  switch (d.type) {
    case 'fixed_amount':
      return { type: d.type, amount_minor: d.amountMinor };
    case 'percentage':
      return { type: d.type, basis_points: d.basisPoints, max_discount_minor: d.maxDiscountMinor };
    case 'free_shipping':
      return { type: d.type };
  }
}

export function campaignJson(c: CampaignRecord) {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    currency: c.currency,
    discount: discountJson(c.discount),
    starts_at: c.startsAt.toISOString(),
    ends_at: iso(c.endsAt),
    redemption_cap: c.redemptionCap,
    budget_minor: c.budgetMinor,
    per_customer_cap: c.perCustomerCap,
    per_person_cap: c.perPersonCap,
    throttle_per_minute: c.throttlePerMinute,
    min_order_minor: c.minOrderMinor,
    eligibility: {
      customer_ids: c.eligibility.customerIds,
      segments: c.eligibility.segments,
      regions: c.eligibility.regions,
      first_order_only: c.eligibility.firstOrderOnly,
    },
    redemptions_used: c.redemptionsUsed,
    spent_minor: c.spentMinor,
    metadata: c.metadata,
    planned_peaks: c.plannedPeaks.map((p) => ({
      starts_at: p.startsAt.toISOString(),
      ends_at: p.endsAt.toISOString(),
      expected_per_minute: p.expectedPerMinute,
    })),
    version: c.version,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

/**
 * A change that waits for a second key is answered 202 with the approval (and where to follow it);
 * an applied one with the campaign.
 */
function sendChange(reply: FastifyReply, change: CampaignChange, appliedStatus: 200 | 201): FastifyReply {
  if (change.approval) {
    reply.header('location', `/v1/approvals/${change.approval.id}`);
    return reply.status(202).send(approvalJson(change.approval));
  }
  return reply.status(appliedStatus).send(campaignJson(change.campaign));
}

const WAITS =
  'A change the two-person approval policy flags (see docs/operations.md) is not applied: the answer is ' +
  '`202` with the pending approval, which another key approves or rejects under /v1/approvals.';

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const campaignRoutes =
  (app: App): Routes =>
  async (server) => {
    const config = { scopes: ['marketing' as const] };
    // On-call fraud analysts may pull the kill switch too.
    const killSwitch = { scopes: ['marketing' as const, 'fraud' as const] };

    server.post(
      '/campaigns',
      {
        config,
        schema: {
          tags: ['campaigns'],
          summary: 'Create a campaign',
          description: `${WAITS} A new campaign that would go live under such terms is created as a draft (its id is the approval's \`target_id\`) and its activation waits.`,
          body: CampaignCreate,
          response: { 201: Campaign, 202: Approval, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const change = await app.campaigns.create(
          { ...termsFromBody(b), currency: b.currency },
          actorOf(request),
        );
        return sendChange(reply, change, 201);
      },
    );

    server.get(
      '/campaigns',
      {
        // On-call reads what it may pause.
        config: killSwitch,
        schema: {
          tags: ['campaigns'],
          summary: 'List campaigns, newest first',
          querystring: Type.Object({ ...PageQuery, status: Type.Optional(CampaignStatus) }, strict),
          response: { 200: Page(Campaign), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.campaigns.list({
          limit: limit + 1,
          before: request.query.cursor,
          status: request.query.status,
        });
        return page(items, limit, campaignJson);
      },
    );

    server.get(
      '/campaigns/:id',
      {
        config: killSwitch,
        schema: {
          tags: ['campaigns'],
          summary: 'Read a campaign',
          params: Params,
          response: { 200: Campaign, ...ErrorResponses },
        },
      },
      async (request) => campaignJson(await app.campaigns.get(request.params.id)),
    );

    server.patch(
      '/campaigns/:id',
      {
        config,
        schema: {
          tags: ['campaigns'],
          summary: 'Change a campaign',
          description:
            'Changes the given fields. Changing the terms bumps `version`; a redemption decided under ' +
            `the old terms is re-decided. \`status\` follows draft → active ⇄ paused → ended. ${WAITS}`,
          params: Params,
          body: CampaignPatch,
          response: { 200: Campaign, 202: Approval, ...ErrorResponses },
        },
      },
      async (request, reply) =>
        sendChange(
          reply,
          await app.campaigns.update(request.params.id, termsFromBody(request.body), actorOf(request)),
          200,
        ),
    );

    for (const [action, to, from] of [
      ['pause', 'paused', ['active']],
      ['resume', 'active', ['paused']],
    ] as const) {
      server.post(
        `/campaigns/:id/${action}`,
        {
          config: killSwitch,
          schema: {
            tags: ['campaigns'],
            summary:
              action === 'pause'
                ? 'Pause: refuse every redemption from the next request on'
                : 'Resume a paused campaign',
            params: Params,
            body: Reason,
            response: { 200: Campaign, 202: Approval, ...ErrorResponses },
          },
        },
        async (request, reply) =>
          sendChange(
            reply,
            await app.campaigns.changeStatus(
              request.params.id,
              to,
              actorOf(request),
              request.body.reason ?? null,
              from,
            ),
            200,
          ),
      );
    }
  };
