import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import type { Eligibility } from '../../domain/campaign.js';
import type { DiscountRule } from '../../domain/money.js';
import type { CampaignPatch as ServicePatch } from '../../services/campaigns.js';
import { actorOf, campaignJson, page } from '../present.js';
import { parseTimestamp } from '../problem.js';
import {
  Campaign,
  CampaignCreate,
  CampaignId,
  CampaignPatch,
  CampaignStatus,
  ErrorResponses,
  Page,
  PageQuery,
  Reason,
} from '../schemas.js';

type DiscountBody = CampaignCreate['discount'];
type EligibilityBody = NonNullable<CampaignCreate['eligibility']>;

export function discountFromBody(d: DiscountBody): DiscountRule {
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

function eligibilityFromBody(e: EligibilityBody | undefined): Partial<Eligibility> | undefined {
  if (!e) return undefined;
  const out: Partial<Eligibility> = {};
  if (e.customer_ids !== undefined) out.customerIds = e.customer_ids;
  if (e.segments !== undefined) out.segments = e.segments;
  if (e.regions !== undefined) out.regions = e.regions;
  if (e.first_order_only !== undefined) out.firstOrderOnly = e.first_order_only;
  return out;
}

const date = (s: string | undefined) => (s === undefined ? undefined : parseTimestamp(s, 'body/starts_at'));
const dateOrNull = (s: string | null | undefined) =>
  s === undefined ? undefined : s === null ? null : parseTimestamp(s, 'body/ends_at');

const Params = Type.Object({ id: CampaignId });

export const campaignRoutes =
  (app: App): FastifyPluginAsyncTypebox =>
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
          body: CampaignCreate,
          response: { 201: Campaign, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const campaign = await app.campaigns.create(
          {
            name: b.name,
            currency: b.currency,
            discount: discountFromBody(b.discount),
            status: b.status,
            startsAt: date(b.starts_at),
            endsAt: dateOrNull(b.ends_at),
            redemptionCap: b.redemption_cap,
            budgetMinor: b.budget_minor,
            perCustomerCap: b.per_customer_cap,
            perPersonCap: b.per_person_cap,
            throttlePerMinute: b.throttle_per_minute,
            minOrderMinor: b.min_order_minor,
            eligibility: eligibilityFromBody(b.eligibility),
            metadata: b.metadata,
          },
          actorOf(request),
        );
        return reply.status(201).send(campaignJson(campaign));
      },
    );

    server.get(
      '/campaigns',
      {
        config,
        schema: {
          tags: ['campaigns'],
          summary: 'List campaigns, newest first',
          querystring: Type.Object(
            { ...PageQuery, status: Type.Optional(CampaignStatus) },
            { additionalProperties: false },
          ),
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
        config,
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
            'the old terms is re-decided. `status` follows draft → active ⇄ paused → ended.',
          params: Params,
          body: CampaignPatch,
          response: { 200: Campaign, ...ErrorResponses },
        },
      },
      async (request) => {
        const b = request.body;
        const patch: ServicePatch = {
          name: b.name,
          discount: b.discount ? discountFromBody(b.discount) : undefined,
          status: b.status,
          startsAt: date(b.starts_at),
          endsAt: dateOrNull(b.ends_at),
          redemptionCap: b.redemption_cap,
          budgetMinor: b.budget_minor,
          perCustomerCap: b.per_customer_cap,
          perPersonCap: b.per_person_cap,
          throttlePerMinute: b.throttle_per_minute,
          minOrderMinor: b.min_order_minor,
          eligibility: eligibilityFromBody(b.eligibility),
          metadata: b.metadata,
        };
        return campaignJson(await app.campaigns.update(request.params.id, patch, actorOf(request)));
      },
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
            response: { 200: Campaign, ...ErrorResponses },
          },
        },
        async (request) =>
          campaignJson(
            await app.campaigns.changeStatus(
              request.params.id,
              to,
              actorOf(request),
              request.body.reason ?? null,
              from,
            ),
          ),
      );
    }
  };
