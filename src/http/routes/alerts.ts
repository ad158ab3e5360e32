/** Alerts raised by the streaming detectors, and their lifecycle (open → acknowledged → resolved). */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { ALERT_KINDS, ALERT_SCOPE_TYPES, ALERT_SEVERITIES } from '../../domain/alerts.js';
import type { AlertRecord } from '../../store/alerts.js';
import {
  actorOf,
  CampaignId,
  component,
  ErrorResponses,
  Id,
  iso,
  Nullable,
  Page,
  PageQuery,
  page,
  Reason,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const AlertId = Id('alt');
const AlertStatus = StringEnum(['open', 'acknowledged', 'resolved'] as const);

const Alert = component(
  'Alert',
  Type.Object({
    id: Type.String(),
    kind: StringEnum(ALERT_KINDS),
    status: AlertStatus,
    severity: StringEnum(ALERT_SEVERITIES),
    scope: Type.Object({
      type: StringEnum(ALERT_SCOPE_TYPES),
      id: Type.String({
        description: 'A code id, campaign id, partner, batch id, address block, person id or keyed hash',
      }),
      campaign_id: Nullable(Type.String()),
      partner: Nullable(Type.String()),
      batch_id: Nullable(Type.String()),
    }),
    detector_key: Type.String({
      description: 'The detector and key that raised it; one alert per key and episode',
    }),
    episode_start: Type.String({
      format: 'date-time',
      description: 'Where the rise began (the change point)',
    }),
    observed: Type.Number({
      description: 'Per interval since the rise began (a count for the window detectors)',
    }),
    expected: Type.Number({ description: "The key's baseline per interval over the same span" }),
    interval_seconds: Type.Integer(),
    details: Type.Record(Type.String(), Type.Unknown()),
    triggered_by_event_id: Nullable(Type.String()),
    triggered_at: Type.String({ format: 'date-time' }),
    raised_at: Type.String({ format: 'date-time' }),
    acknowledged_at: Nullable(Type.String({ format: 'date-time' })),
    acknowledged_by: Nullable(Type.String()),
    resolved_at: Nullable(Type.String({ format: 'date-time' })),
    resolved_by: Nullable(Type.String()),
  }),
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

export const alertJson = (a: AlertRecord) => ({
  id: a.id,
  kind: a.kind,
  status: a.status,
  severity: a.severity,
  scope: {
    type: a.scope.type,
    id: a.scope.id,
    campaign_id: a.scope.campaignId,
    partner: a.scope.partner,
    batch_id: a.scope.batchId,
  },
  detector_key: a.detectorKey,
  episode_start: a.episodeStart.toISOString(),
  observed: a.observed,
  expected: a.expected,
  interval_seconds: a.intervalSeconds,
  details: a.details,
  triggered_by_event_id: a.triggeredByEventId,
  triggered_at: a.triggeredAt.toISOString(),
  raised_at: a.raisedAt.toISOString(),
  acknowledged_at: iso(a.acknowledgedAt),
  acknowledged_by: a.acknowledgedBy,
  resolved_at: iso(a.resolvedAt),
  resolved_by: a.resolvedBy,
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const alertRoutes =
  (app: App): Routes =>
  async (server) => {
    const config = { scopes: ['fraud' as const] };
    const Params = Type.Object({ id: AlertId });

    server.get(
      '/alerts',
      {
        config,
        schema: {
          tags: ['risk'],
          summary: 'Alerts raised by the streaming detectors, newest first',
          querystring: Type.Object(
            {
              limit: PageQuery.limit,
              cursor: PageQuery.cursor,
              status: Type.Optional(AlertStatus),
              kind: Type.Optional(StringEnum(ALERT_KINDS)),
              campaign_id: Type.Optional(CampaignId),
              since: Type.Optional(Timestamp),
            },
            strict,
          ),
          response: { 200: Page(Alert), ...ErrorResponses },
        },
      },
      async (request) => {
        const { limit = 50, cursor, status, kind, campaign_id, since } = request.query;
        const alerts = await app.alerts.list({
          limit: limit + 1,
          before: cursor,
          status,
          kind,
          campaignId: campaign_id,
          since,
        });
        return page(alerts, limit, alertJson);
      },
    );

    server.get(
      '/alerts/:id',
      {
        config,
        schema: {
          tags: ['risk'],
          summary: 'One alert',
          params: Params,
          response: { 200: Alert, ...ErrorResponses },
        },
      },
      async (request) => alertJson(await app.alerts.get(request.params.id)),
    );

    for (const action of ['acknowledge', 'resolve'] as const) {
      server.post(
        `/alerts/:id/${action}`,
        {
          config,
          schema: {
            tags: ['risk'],
            summary:
              action === 'acknowledge'
                ? 'Acknowledge an alert: someone is on it (audited)'
                : 'Resolve an alert (audited); a resolved alert stays resolved',
            description:
              'Repeating the call returns the alert unchanged. Acknowledging a resolved alert is a 409 `alert_resolved`.',
            params: Params,
            body: Reason,
            response: { 200: Alert, ...ErrorResponses },
          },
        },
        async (request) => {
          const reason = request.body.reason ?? null;
          const actor = actorOf(request);
          const alert =
            action === 'acknowledge'
              ? await app.alerts.acknowledge(request.params.id, actor, reason)
              : await app.alerts.resolve(request.params.id, actor, reason);
          return alertJson(alert);
        },
      );
    }
  };
