/**
 * What the console draws: one campaign over time (from the database, the same on every node) and a
 * JSON summary of the metrics this node exports (its counters since it started, and the database
 * gauges every node reads alike) for the on-call panels, without a Prometheus in between.
 */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import {
  CampaignId,
  component,
  ErrorResponses,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';

const HOUR = 3_600_000;

const SeriesPoint = Type.Object({
  at: Type.String({ format: 'date-time', description: 'Start of the bucket (UTC)' }),
  redemptions: Type.Integer({ description: 'Redemptions made in the bucket (later rollbacks included)' }),
  spent_minor: Type.Integer({ description: 'Discount of the bucket’s redemptions still in force' }),
  rollbacks: Type.Integer({ description: 'Redemptions rolled back in the bucket' }),
  new_accounts: Type.Integer({
    description:
      'Redemptions made in the bucket by an account younger than `new_account_hours` (by the `account_created_at` the request sent)',
  }),
  account_age_known: Type.Integer({
    description:
      'Redemptions made in the bucket whose request sent `account_created_at`: the share’s denominator',
  }),
  risk_blocked: Type.Integer({ description: 'Redemption attempts the risk engine blocked' }),
  risk_challenged: Type.Integer({ description: 'Redemption attempts the risk engine challenged' }),
});

const CampaignSeries = component(
  'CampaignSeries',
  Type.Object({
    campaign_id: Type.String(),
    currency: Type.String(),
    budget_minor: Type.Union([Type.Integer(), Type.Null()]),
    bucket: Type.String(),
    from: Type.String({ format: 'date-time' }),
    to: Type.String({ format: 'date-time' }),
    new_account_hours: Type.Integer({ description: 'An account younger than this counts as new' }),
    spent_before_minor: Type.Integer({
      description: 'Discount in force from redemptions before `from`: where the burn starts',
    }),
    points: Type.Array(SeriesPoint),
  }),
);

const Sample = Type.Object({
  labels: Type.Record(Type.String(), Type.String()),
  value: Type.Number(),
  series: Type.Optional(
    Type.String({ description: 'A histogram’s series: name_bucket, name_sum or name_count' }),
  ),
});

const MetricSummary = Type.Object({
  name: Type.String(),
  type: Type.String({ description: 'counter, gauge or histogram' }),
  help: Type.String(),
  samples: Type.Array(Sample, {
    description: 'Histograms as their _bucket (label le), _sum and _count series',
  }),
});

export const insightRoutes =
  (app: App): Routes =>
  async (server) => {
    server.get(
      '/campaigns/:id/series',
      {
        config: { scopes: ['marketing' as const, 'fraud' as const] },
        schema: {
          tags: ['campaigns'],
          summary:
            'One campaign over time: redemptions, discount (budget burn), rollbacks, new accounts, risk refusals',
          description:
            'Buckets without activity are left out. `from` defaults to 24 hours before `to`, `to` to now; ' +
            'a window may hold at most 2000 buckets.',
          params: Type.Object({ id: CampaignId }),
          querystring: Type.Object(
            {
              from: Type.Optional(Timestamp),
              to: Type.Optional(Timestamp),
              bucket: Type.Optional(
                StringEnum(['minute', 'hour', 'day'] as const, { description: 'default hour' }),
              ),
            },
            strict,
          ),
          response: {
            200: CampaignSeries,
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const to = request.query.to ?? new Date();
        const from = request.query.from ?? new Date(to.getTime() - 24 * HOUR);
        const bucket = request.query.bucket ?? 'hour';
        const { campaign, spentBefore, points } = await app.campaigns.series(request.params.id, {
          from,
          to,
          bucket,
          newAccountHours: app.config.DETECTION_NEW_ACCOUNT_HOURS,
        });
        return {
          campaign_id: campaign.id,
          currency: campaign.currency,
          budget_minor: campaign.budgetMinor,
          bucket,
          from: from.toISOString(),
          to: to.toISOString(),
          new_account_hours: app.config.DETECTION_NEW_ACCOUNT_HOURS,
          spent_before_minor: spentBefore,
          points: points.map((p) => ({
            at: p.at.toISOString(),
            redemptions: p.redemptions,
            spent_minor: p.spentMinor,
            rollbacks: p.rollbacks,
            new_accounts: p.newAccounts,
            account_age_known: p.accountAgeKnown,
            risk_blocked: p.riskBlocked,
            risk_challenged: p.riskChallenged,
          })),
        };
      },
    );

    server.get(
      '/metrics/summary',
      {
        config: { scopes: ['fraud' as const, 'marketing' as const, 'finance' as const] },
        schema: {
          tags: ['admin'],
          summary:
            "The service's metrics as JSON: this node's counters since it started and the database gauges",
          description:
            'The promoguard_* series of GET /metrics. `campaign_id` keeps only the series of that campaign ' +
            '(and those without a campaign label).',
          querystring: Type.Object({ campaign_id: Type.Optional(CampaignId) }, strict),
          response: {
            200: Type.Object({
              at: Type.String({ format: 'date-time' }),
              metrics: Type.Array(MetricSummary),
            }),
            ...ErrorResponses,
          },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        const wanted = request.query.campaign_id;
        const metrics = (await app.metrics.summary()).map((m) => ({
          ...m,
          samples:
            wanted === undefined
              ? m.samples
              : m.samples.filter(
                  (s) => s.labels.campaign_id === undefined || s.labels.campaign_id === wanted,
                ),
        }));
        return { at: new Date().toISOString(), metrics };
      },
    );
  };
