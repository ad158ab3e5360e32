/** The audit trail: read-only. No route edits or deletes an entry, and the database refuses to. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import type { AuditEntry } from '../../store/audit.js';
import {
  component,
  ErrorResponses,
  Nullable,
  NumericCursor,
  PageQuery,
  page,
  type Routes,
  strict,
  Text,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Entry = component(
  'AuditEntry',
  Type.Object({
    id: Type.Integer({ description: 'Increases in the order entries were written' }),
    actor: Type.String({
      description: 'The API key id that made the change, `cli`, or `promoguard` (the service itself)',
    }),
    action: Type.String({ description: '`<resource>.<verb>`, e.g. `campaign.updated`, `api_key.revoked`' }),
    resource: Type.String({ description: 'The id of what changed (campaign, code, rule, key, approval, …)' }),
    reason: Nullable(Type.String()),
    details: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The change itself: what was created, or each changed field `{from, to}`, …',
    }),
    created_at: Timestamp,
  }),
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const entryJson = (e: AuditEntry) => ({
  id: e.id,
  actor: e.actor,
  action: e.action,
  resource: e.targetId,
  reason: e.reason,
  details: e.details,
  created_at: e.createdAt.toISOString(),
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const auditRoutes =
  (app: App): Routes =>
  async (server) => {
    // Analysts and on-call (fraud) investigate with it; marketing keys do not read it, since it holds
    // the fraud rules and list entries a dishonest insider would want to learn to evade.
    const config = { scopes: ['fraud' as const] };

    server.get(
      '/audit',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'The audit trail, newest first, filtered by actor, resource, action prefix and time',
          querystring: Type.Object(
            {
              limit: PageQuery.limit,
              cursor: NumericCursor,
              actor: Type.Optional(Text(128, 'An API key id, `cli` or `promoguard`')),
              resource: Type.Optional(Text(128, 'The id of what changed')),
              action: Type.Optional(
                Type.String({
                  pattern: '^[a-z0-9_.]{1,64}$',
                  description: 'Actions starting with this, e.g. `campaign.` or `api_key.revoked`',
                }),
              ),
              from: Type.Optional(Timestamp),
              to: Type.Optional(Timestamp),
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
        const { limit = 50, cursor, actor, resource, action, from, to } = request.query;
        const entries = await app.audit.list({
          limit: limit + 1,
          before: cursor,
          actor,
          targetId: resource,
          actionPrefix: action,
          from,
          to,
        });
        return page(entries, limit, entryJson, (e) => e.id);
      },
    );
  };
