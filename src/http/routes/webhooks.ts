/** Webhook endpoints (Standard Webhooks), their delivery log and redelivery: scope `webhooks`. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { EVENT_TYPES } from '../../domain/events.js';
import type { WebhookDelivery, WebhookEndpoint } from '../../services/webhooks.js';
import {
  actorOf,
  ErrorResponses,
  Id,
  iso,
  Nullable,
  Page,
  PageQuery,
  page,
  type Routes,
  StringEnum,
  strict,
  Text,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const WebhookId = Id('whk');
const DeliveryId = Id('whd');

const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  pattern: '^https?://[^\\s]+$',
  description: 'Where events are POSTed (http or https)',
});

const EventTypes = Type.Array(StringEnum([...EVENT_TYPES, '*'] as const), {
  minItems: 1,
  maxItems: EVENT_TYPES.length + 1,
  uniqueItems: true,
  description: 'Event types to send; "*" sends every type',
});

const Webhook = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Nullable(Type.String()),
  event_types: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  disabled_reason: Nullable(
    Type.String({ description: '"gone" when the service disabled it after a 410 answer; null otherwise' }),
  ),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const WithSecret = Type.Object({
  ...Webhook.properties,
  secret: Type.String({ description: 'The whsec_… signing secret; shown in this response only' }),
});

const Attempt = Type.Object({
  attempted_at: Timestamp,
  status_code: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  duration_ms: Type.Integer(),
});

const Delivery = Type.Object({
  id: Type.String(),
  webhook_id: Type.String(),
  event_id: Type.String({ description: 'Also the webhook-id header: the same on every attempt' }),
  event_type: Type.String(),
  status: StringEnum(['pending', 'succeeded', 'failed'] as const),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Timestamp),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  delivered_at: Nullable(Timestamp),
  created_at: Timestamp,
  attempt_log: Type.Array(Attempt),
});

const Params = Type.Object({ id: WebhookId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const webhookJson = (e: WebhookEndpoint) => ({
  id: e.id,
  url: e.url,
  description: e.description,
  event_types: e.eventTypes,
  enabled: e.enabled,
  disabled_reason: e.disabledReason,
  created_at: e.createdAt.toISOString(),
  updated_at: e.updatedAt.toISOString(),
});

const deliveryJson = (d: WebhookDelivery) => ({
  id: d.id,
  webhook_id: d.endpoint_id,
  event_id: d.event_id,
  event_type: d.event_type,
  status: d.status,
  attempts: d.attempts,
  next_attempt_at: d.status === 'pending' ? iso(d.next_attempt_at) : null,
  last_status_code: d.last_status_code,
  last_error: d.last_error,
  delivered_at: iso(d.delivered_at),
  created_at: d.created_at.toISOString(),
  attempt_log: d.attemptLog.map((a) => ({
    attempted_at: a.attempted_at.toISOString(),
    status_code: a.status_code,
    error: a.error,
    duration_ms: a.duration_ms,
  })),
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const webhookRoutes =
  (app: App): Routes =>
  async (server) => {
    const scoped = { scopes: ['webhooks' as const] };

    server.post(
      '/webhooks',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'Create a webhook endpoint; its signing secret is in this response only',
          body: Type.Object(
            {
              url: Url,
              event_types: EventTypes,
              description: Type.Optional(Nullable(Text(500))),
              enabled: Type.Optional(Type.Boolean()),
            },
            strict,
          ),
          response: { 201: WithSecret, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const { endpoint, secret } = await app.webhooks.create(
          {
            url: request.body.url,
            eventTypes: request.body.event_types,
            description: request.body.description ?? null,
            ...(request.body.enabled !== undefined ? { enabled: request.body.enabled } : {}),
          },
          actorOf(request),
        );
        return reply.status(201).send({ ...webhookJson(endpoint), secret });
      },
    );

    server.get(
      '/webhooks',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'List webhook endpoints, newest first (never their secrets)',
          querystring: Type.Object(PageQuery, strict),
          response: { 200: Page(Webhook), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        return page(await app.webhooks.list(limit + 1, request.query.cursor), limit, webhookJson);
      },
    );

    server.get(
      '/webhooks/:id',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'Read a webhook endpoint',
          params: Params,
          response: { 200: Webhook, ...ErrorResponses },
        },
      },
      async (request) => webhookJson(await app.webhooks.get(request.params.id)),
    );

    server.patch(
      '/webhooks/:id',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'Change the URL, event types, description, or enable/disable (enabling clears "gone")',
          params: Params,
          body: Type.Object(
            {
              url: Type.Optional(Url),
              event_types: Type.Optional(EventTypes),
              description: Type.Optional(Nullable(Text(500))),
              enabled: Type.Optional(Type.Boolean()),
            },
            { ...strict, minProperties: 1 },
          ),
          response: { 200: Webhook, ...ErrorResponses },
        },
      },
      async (request) => {
        const b = request.body;
        return webhookJson(
          await app.webhooks.update(
            request.params.id,
            {
              ...(b.url !== undefined ? { url: b.url } : {}),
              ...(b.event_types !== undefined ? { eventTypes: b.event_types } : {}),
              ...(b.description !== undefined ? { description: b.description } : {}),
              ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
            },
            actorOf(request),
          ),
        );
      },
    );

    server.delete(
      '/webhooks/:id',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'Delete a webhook endpoint (nothing more is sent to it; its delivery log stays readable)',
          params: Params,
          response: { 204: Type.Null(), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        await app.webhooks.delete(request.params.id, actorOf(request));
        return reply.status(204).send(null);
      },
    );

    server.post(
      '/webhooks/:id/rotate-secret',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'A new signing secret, shown once; the old one also signs for 24 hours',
          params: Params,
          response: { 200: WithSecret, ...ErrorResponses },
        },
      },
      async (request) => {
        const { endpoint, secret } = await app.webhooks.rotateSecret(request.params.id, actorOf(request));
        return { ...webhookJson(endpoint), secret };
      },
    );

    server.get(
      '/webhooks/:id/deliveries',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'The delivery log, newest first: each delivery with its attempts and next attempt',
          params: Params,
          querystring: Type.Object(
            { ...PageQuery, status: Type.Optional(StringEnum(['pending', 'succeeded', 'failed'] as const)) },
            strict,
          ),
          response: { 200: Page(Delivery), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const rows = await app.webhooks.deliveries(
          request.params.id,
          limit + 1,
          request.query.cursor,
          request.query.status,
        );
        return page(rows, limit, deliveryJson);
      },
    );

    server.post(
      '/webhooks/:id/deliveries/:delivery_id/redeliver',
      {
        config: scoped,
        schema: {
          tags: ['webhooks'],
          summary: 'Send a delivery again now, with the same webhook-id (the retry schedule starts again)',
          params: Type.Object({ id: WebhookId, delivery_id: DeliveryId }),
          response: { 202: Delivery, ...ErrorResponses },
        },
      },
      async (request, reply) =>
        reply
          .status(202)
          .send(
            deliveryJson(
              await app.webhooks.redeliver(request.params.id, request.params.delivery_id, actorOf(request)),
            ),
          ),
    );
  };
