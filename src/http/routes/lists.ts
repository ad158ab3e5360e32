/** Block and allow lists of identifiers, kept only as keyed hashes. */
import { type Static, Type } from 'typebox';
import type { App } from '../../app.js';
import { LIST_TYPES } from '../../services/lists.js';
import type { ListEntry } from '../../store/lists.js';
import {
  actorOf,
  component,
  ErrorResponses,
  iso,
  Nullable,
  NumericCursor,
  PageQuery,
  page,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
  Why,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const ListName = StringEnum(['block', 'allow'] as const);
const IdentifierType = StringEnum(LIST_TYPES);

const Entry = component(
  'ListEntry',
  Type.Object({
    id: Type.Integer(),
    list: ListName,
    type: IdentifierType,
    identifier_hash: Type.String({
      description: 'Keyed hash of the normalized value (customer ids as given)',
    }),
    network: Nullable(
      Type.String({ description: 'The IP range of a range entry (`203.0.113.0/24`); null otherwise' }),
    ),
    reason: Type.String(),
    created_by: Type.String(),
    created_at: Timestamp,
    expires_at: Nullable(Timestamp),
    removed_at: Nullable(Timestamp),
  }),
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const entryJson = (e: ListEntry): Static<typeof Entry> => ({
  id: e.id,
  list: e.list,
  type: e.identifierType as Static<typeof Entry>['type'],
  identifier_hash: e.identifierHash,
  network: e.network,
  reason: e.reason,
  created_by: e.createdBy,
  created_at: e.createdAt.toISOString(),
  expires_at: iso(e.expiresAt),
  removed_at: iso(e.removedAt),
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const listRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };

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
            'identifier that is already on the list updates its reason and expiry. An `ip` value may be a range in ' +
            'CIDR notation (`203.0.113.0/24`, `2001:db8::/32`, IPv6 no narrower than /64); host bits set is ' +
            'refused with `validation_failed`.',
          body: Type.Object(
            {
              list: ListName,
              type: IdentifierType,
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
            expiresAt: b.expires_at ?? null,
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
              list: Type.Optional(ListName),
              type: Type.Optional(IdentifierType),
              limit: PageQuery.limit,
              cursor: NumericCursor,
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
  };
