/** An operator's controls over abuse: linked accounts, bulk revocation, throttles and partner caps. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import {
  actorOf,
  CampaignId,
  CustomerId,
  component,
  ErrorResponses,
  Nullable,
  type Routes,
  strict,
  Text,
  Timestamp,
  Why,
} from '../shared.js';
import { Campaign, campaignJson } from './campaigns.js';
import { Partner } from './codes.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Links = Type.Object({
  customer_id: Type.String(),
  person_id: Nullable(Type.String()),
  customers: Type.Array(Type.String(), {
    description: 'Every account of the person, this one included',
  }),
  shared_identifiers: Type.Array(
    Type.Object({
      type: Type.String(),
      identifier_hash: Type.String(),
      customers: Type.Array(Type.String()),
      first_seen: Timestamp,
    }),
  ),
});

const PartnerRow = component(
  'PartnerCap',
  Type.Object({
    partner: Type.String(),
    cap: Nullable(Type.Integer()),
    used: Type.Integer({ description: "Redemptions in force of this partner's codes" }),
    codes: Type.Integer(),
  }),
);

const Partners = Type.Object({ data: Type.Array(PartnerRow) });

const CampaignParams = Type.Object({ id: CampaignId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

type PersonLinks = Awaited<ReturnType<App['controls']['links']>>;

const linksJson = (customerId: string, links: PersonLinks) => ({
  customer_id: customerId,
  person_id: links.personId,
  customers: links.customers,
  shared_identifiers: links.sharedIdentifiers.map((s) => ({
    type: s.type,
    identifier_hash: s.hash,
    customers: s.customers,
    first_seen: s.firstSeen.toISOString(),
  })),
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const controlRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };
    const operators = { scopes: ['fraud' as const, 'marketing' as const] };

    server.get(
      '/customers/:id/links',
      {
        config: fraud,
        schema: {
          tags: ['defenses'],
          summary:
            'The accounts linked to a customer into one person, and the shared identifiers that link them',
          params: Type.Object({ id: CustomerId }),
          response: { 200: Links, ...ErrorResponses },
        },
      },
      async (request) => linksJson(request.params.id, await app.controls.links(request.params.id)),
    );

    server.post(
      '/persons/:id/split',
      {
        config: fraud,
        schema: {
          tags: ['defenses'],
          summary:
            'Split linked accounts that are not one person: the named customers leave for a new person, and the identifiers both sides shared stop linking',
          params: Type.Object({
            id: Text(64, 'The person id (`person_id` of GET /v1/customers/{id}/links)'),
          }),
          body: Type.Object(
            {
              customer_ids: Type.Array(CustomerId, {
                minItems: 1,
                maxItems: 1000,
                uniqueItems: true,
                description: 'Accounts of the person that move to the new person; at least one must stay',
              }),
              reason: Why,
            },
            strict,
          ),
          response: {
            200: Type.Object({
              person_id: Type.String(),
              new_person_id: Type.String(),
              customer_ids: Type.Array(Type.String(), { description: 'The accounts that moved' }),
              unlinked_identifiers: Type.Integer({
                description: 'Identifiers both sides shared, which link nobody from now on',
              }),
            }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const split = await app.controls.splitPerson(
          request.params.id,
          request.body.customer_ids,
          actorOf(request),
          request.body.reason,
        );
        return {
          person_id: split.personId,
          new_person_id: split.newPersonId,
          customer_ids: split.moved,
          unlinked_identifiers: split.unlinked,
        };
      },
    );

    server.post(
      '/campaigns/:id/codes/revoke',
      {
        config: operators,
        schema: {
          tags: ['defenses'],
          summary: 'Revoke every unredeemed code of the campaign, or of one partner channel, in one call',
          params: CampaignParams,
          body: Type.Object({ partner: Type.Optional(Partner), reason: Why }, strict),
          response: { 200: Type.Object({ revoked: Type.Integer() }), ...ErrorResponses },
        },
      },
      async (request) => ({
        revoked: await app.controls.revokeUnredeemed(
          request.params.id,
          request.body.partner ?? null,
          actorOf(request),
          request.body.reason,
        ),
      }),
    );

    server.post(
      '/campaigns/:id/throttle',
      {
        config: operators,
        schema: {
          tags: ['defenses'],
          summary: 'Allow at most N redemptions per UTC minute (null lifts the throttle)',
          params: CampaignParams,
          body: Type.Object(
            { per_minute: Nullable(Type.Integer({ minimum: 1, maximum: 10_000_000 })), reason: Why },
            strict,
          ),
          response: { 200: Campaign, ...ErrorResponses },
        },
      },
      async (request) =>
        campaignJson(
          await app.controls.throttle(
            request.params.id,
            request.body.per_minute,
            actorOf(request),
            request.body.reason,
          ),
        ),
    );

    server.get(
      '/campaigns/:id/partners',
      {
        config: operators,
        schema: {
          tags: ['defenses'],
          summary: 'Partner channels of the campaign with their caps and use',
          params: CampaignParams,
          response: { 200: Partners, ...ErrorResponses },
        },
      },
      async (request) => ({ data: await app.controls.partners(request.params.id) }),
    );

    server.put(
      '/campaigns/:id/partners/:partner',
      {
        config: operators,
        schema: {
          tags: ['defenses'],
          summary: 'Cap the redemptions of one partner channel (null removes the cap)',
          params: Type.Object({ id: CampaignId, partner: Partner }),
          body: Type.Object(
            { cap: Nullable(Type.Integer({ minimum: 0, maximum: 2_000_000_000 })), reason: Why },
            strict,
          ),
          response: { 200: Partners, ...ErrorResponses },
        },
      },
      async (request) => ({
        data: await app.controls.capPartner(
          request.params.id,
          request.params.partner,
          request.body.cap,
          actorOf(request),
          request.body.reason,
        ),
      }),
    );
  };
