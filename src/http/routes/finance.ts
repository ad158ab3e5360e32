/** Finance's reads of the ledger: discount spend by campaign and day, week or month (JSON or CSV). */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { spendCsv } from '../../formats/spend-csv.js';
import type { SpendRow } from '../../store/spend.js';
import {
  CampaignId,
  component,
  ErrorResponses,
  Nullable,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';

const SpendRowJson = Type.Object({
  period_start: Type.String({
    format: 'date-time',
    description: 'Start of the period (UTC; weeks start Monday)',
  }),
  campaign_id: Type.String(),
  campaign_name: Nullable(Type.String()),
  currency: Type.String(),
  spent_minor: Type.Integer({ description: 'Discount of the redemptions made in the period' }),
  reversed_minor: Type.Integer({ description: 'Discount given back by rollbacks in the period' }),
  net_minor: Type.Integer({
    description: 'spent_minor - reversed_minor: the ledger’s expense of the period',
  }),
  redemptions: Type.Integer(),
  reversals: Type.Integer(),
});

const SpendReport = component(
  'SpendReport',
  Type.Object({
    period: StringEnum(['day', 'week', 'month'] as const),
    from: Type.String({ format: 'date-time' }),
    to: Type.String({ format: 'date-time' }),
    data: Type.Array(SpendRowJson, { description: 'By period, then campaign, then currency' }),
    totals: Type.Array(
      Type.Object({
        currency: Type.String(),
        spent_minor: Type.Integer(),
        reversed_minor: Type.Integer(),
        net_minor: Type.Integer(),
      }),
      { description: 'The window’s sums per currency (amounts of different currencies never add up)' },
    ),
  }),
);

const rowJson = (r: SpendRow) => ({
  period_start: r.periodStart.toISOString(),
  campaign_id: r.campaignId,
  campaign_name: r.campaignName,
  currency: r.currency,
  spent_minor: r.spentMinor,
  reversed_minor: r.reversedMinor,
  net_minor: r.netMinor,
  redemptions: r.redemptions,
  reversals: r.reversals,
});

function totals(rows: SpendRow[]) {
  const by = new Map<
    string,
    { currency: string; spent_minor: number; reversed_minor: number; net_minor: number }
  >();
  for (const r of rows) {
    const t = by.get(r.currency) ?? { currency: r.currency, spent_minor: 0, reversed_minor: 0, net_minor: 0 };
    t.spent_minor += r.spentMinor;
    t.reversed_minor += r.reversedMinor;
    t.net_minor += r.netMinor;
    by.set(r.currency, t);
  }
  return [...by.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}

export const financeRoutes =
  (app: App): Routes =>
  async (server) => {
    // Finance reads the ledger; admin holds every scope.
    const config = { scopes: ['finance' as const] };

    server.get(
      '/finance/spend',
      {
        config,
        schema: {
          tags: ['finance'],
          summary: 'Discount spend by campaign and day, week or month, from the ledger (JSON or CSV)',
          description:
            'Sums the ledger’s expense entries: a redemption counts in the period it was made, a rollback in ' +
            'the period it was rolled back. `from` defaults to 30 days before `to`, `to` to now; a window ' +
            'covers at most 400 days by day, 3 years by week, 10 years by month, and at most 20,000 rows.',
          querystring: Type.Object(
            {
              from: Type.Optional(Timestamp),
              to: Type.Optional(Timestamp),
              period: Type.Optional(
                StringEnum(['day', 'week', 'month'] as const, { description: 'default day' }),
              ),
              campaign_id: Type.Optional(CampaignId),
              format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])),
            },
            strict,
          ),
          response: {
            200: {
              description: 'The report, or with format=csv its rows as text/csv (money in minor units)',
              content: {
                'application/json': { schema: SpendReport },
                'text/csv': { schema: Type.String() },
              },
            },
            ...ErrorResponses,
          },
        },
      },
      async (request, reply) => {
        const period = request.query.period ?? 'day';
        const { from, to, rows } = await app.spend.report({
          from: request.query.from,
          to: request.query.to,
          period,
          campaignId: request.query.campaign_id,
        });
        if (request.query.format === 'csv') {
          const name = `spend-${period}-${from.toISOString().slice(0, 10)}-${to.toISOString().slice(0, 10)}.csv`;
          reply.header('content-disposition', `attachment; filename="${name}"`);
          return reply.type('text/csv; charset=utf-8').send(spendCsv(rows));
        }
        return reply.type('application/json').send({
          period,
          from: from.toISOString(),
          to: to.toISOString(),
          data: rows.map(rowJson),
          totals: totals(rows),
        });
      },
    );
  };
