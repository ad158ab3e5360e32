import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from 'typebox';
import type { App } from '../../app.js';
import { LIST_TYPES } from '../../services/lists.js';
import type { ListEntry } from '../../store/lists.js';
import { actorOf, campaignJson, iso, page } from '../present.js';
import { parseTimestamp } from '../problem.js';
import {
  Campaign,
  CampaignId,
  CustomerId,
  ErrorResponses,
  Nullable,
  Partner,
  StringEnum,
  strict,
  Timestamp,
} from '../schemas.js';

const Why = Type.String({ minLength: 1, maxLength: 500, description: 'Why; kept in the audit log' });

const Entry = Type.Object({
  id: Type.Integer(),
  list: StringEnum(['block', 'allow'] as const),
  type: StringEnum(LIST_TYPES),
  identifier_hash: Type.String({ description: 'Keyed hash of the normalized value (customer ids as given)' }),
  reason: Type.String(),
  created_by: Type.String(),
  created_at: Timestamp,
  expires_at: Nullable(Timestamp),
  removed_at: Nullable(Timestamp),
});

const entryJson = (e: ListEntry): Static<typeof Entry> => ({
  id: e.id,
  list: e.list,
  type: e.identifierType as Static<typeof Entry>['type'],
  identifier_hash: e.identifierHash,
  reason: e.reason,
  created_by: e.createdBy,
  created_at: e.createdAt.toISOString(),
  expires_at: iso(e.expiresAt),
  removed_at: iso(e.removedAt),
});

const PartnerRow = Type.Object({
  partner: Type.String(),
  cap: Nullable(Type.Integer()),
  used: Type.Integer({ description: "Redemptions in force of this partner's codes" }),
  codes: Type.Integer(),
});

export const defenseRoutes =
  (app: App): FastifyPluginAsyncTypebox =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };
    const operators = { scopes: ['fraud' as const, 'marketing' as const] };
    const CampaignParams = Type.Object({ id: CampaignId });

    server.post(
      '/lists',
      {
        config: fraud,
        schema: {
          tags: ['defenses'],
          summary: 'Block or allow an identifier',
          description:
            "The value is normalized and stored only as a keyed hash. A blocked identifier's validations and " +
            'redemptions are refused; an allowed one skips rate limits and lockouts, never a cap. Adding an ' +
            'identifier that is already on the list updates its reason and expiry.',
          body: Type.Object(
            {
              list: StringEnum(['block', 'allow'] as const),
              type: StringEnum(LIST_TYPES),
              value: Type.String({ minLength: 1, maxLength: 320 }),
              reason: Why,
              expires_at: Type.Optional(Nullable(Timestamp)),
            },
            strict,
          ),
          response: { 201: Entry, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const entry = await app.lists.add(
          {
            list: b.list,
            type: b.type,
            value: b.value,
            reason: b.reason,
            expiresAt: b.expires_at ? parseTimestamp(b.expires_at, 'body/expires_at') : null,
          },
          actorOf(request),
        );
        return reply.status(201).send(entryJson(entry));
      },
    );

    server.get(
      '/lists',
      {
        config: fraud,
        schema: {
          tags: ['defenses'],
          summary: 'Active list entries, newest first',
          querystring: Type.Object(
            {
              list: Type.Optional(StringEnum(['block', 'allow'] as const)),
              type: Type.Optional(StringEnum(LIST_TYPES)),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
              cursor: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
            },
            strict,
          ),
          response: {
            200: Type.Object({ data: Type.Array(Entry), next_cursor: Nullable(Type.Integer()) }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const entries = await app.lists.list({
          ...request.query,
          limit: limit + 1,
          before: request.query.cursor,
        });
        return page(entries, limit, entryJson, (e) => e.id);
      },
    );

    server.post(
      '/lists/:entry/remove',
      {
        config: fraud,
        schema: {
          tags: ['defenses'],
          summary: 'Take an entry off its list (audited); repeating is harmless',
          params: Type.Object({ entry: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
          body: Type.Object({ reason: Type.Optional(Why) }, strict),
          response: { 200: Entry, ...ErrorResponses },
        },
      },
      async (request) =>
        entryJson(
          await app.lists.remove(request.params.entry, actorOf(request), request.body.reason ?? null),
        ),
    );

    server.get(
      '/customers/:id/links',
      {
        config: fraud,
        schema: {
          tags: ['defenses'],
          summary:
            'The accounts linked to a customer into one person, and the shared identifiers that link them',
          params: Type.Object({ id: CustomerId }),
          response: {
            200: Type.Object({
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
            }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const links = await app.controls.links(request.params.id);
        return {
          customer_id: request.params.id,
          person_id: links.personId,
          customers: links.customers,
          shared_identifiers: links.sharedIdentifiers.map((s) => ({
            type: s.type,
            identifier_hash: s.hash,
            customers: s.customers,
            first_seen: s.firstSeen.toISOString(),
          })),
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
          response: { 200: Type.Object({ data: Type.Array(PartnerRow) }), ...ErrorResponses },
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
          response: { 200: Type.Object({ data: Type.Array(PartnerRow) }), ...ErrorResponses },
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
