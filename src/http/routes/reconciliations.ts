/** Reconciliation reports: run one now, list them, read one with its mismatches, export them as CSV. */
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { reconciliationCsv } from '../../formats/reconciliation.js';
import type { MismatchItem, Reconciliation } from '../../store/reconciliation.js';
import { KIND_NAMES } from '../../store/reconciliation.js';
import {
  actorOf,
  component,
  ErrorResponses,
  Id,
  iso,
  Nullable,
  NumericCursor,
  Page,
  PageQuery,
  page,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Unit = StringEnum(['minor', 'count', 'points'] as const, {
  description: 'minor: minor units of `currency`; count: rows or uses; points: loyalty points',
});

const KindSummary = Type.Object({
  unit: Unit,
  rows: Type.Integer({ description: 'Mismatched rows found' }),
  itemised: Type.Integer({ description: 'Of those, kept as items (at most 100,000 per kind and run)' }),
  difference: Type.Integer({ description: 'Sum of |difference| over the rows, in the unit' }),
  by_currency: Type.Optional(
    Type.Record(Type.String(), Type.Integer(), {
      description: 'Money kinds: sum of |difference| per currency',
    }),
  ),
});

const Summary = Type.Object({
  checked: Type.Object({
    campaigns: Type.Integer(),
    points_accounts: Type.Integer(),
    outbox_grace_seconds: Type.Integer(),
  }),
  mismatched_rows: Type.Integer(),
  kinds: Type.Record(Type.String(), KindSummary, { description: 'Every kind of check, by name' }),
});

const ReconciliationJson = component(
  'Reconciliation',
  Type.Object({
    id: Type.String(),
    status: StringEnum(['running', 'ok', 'mismatch', 'failed'] as const),
    triggered_by: Type.String({ description: 'The API key that asked for it, `cli` or `schedule`' }),
    started_at: Timestamp,
    finished_at: Nullable(Timestamp),
    failure: Nullable(
      StringEnum(['error', 'abandoned', 'interrupted'] as const, {
        description:
          'Why a failed run failed: error (the server log has the detail), abandoned (its node stopped), interrupted (its node shut down)',
      }),
    ),
    summary: Nullable(Summary),
  }),
);

const Mismatch = component(
  'ReconciliationMismatch',
  Type.Object({
    seq: Type.Integer({ description: 'Position in the report' }),
    kind: StringEnum(KIND_NAMES),
    campaign_id: Nullable(Type.String()),
    entity: Type.Record(Type.String(), Type.String(), {
      description: 'The ids naming the mismatched thing, e.g. {"campaign_id": …, "code_id": …}',
    }),
    currency: Nullable(Type.String({ description: 'For money; null for rows, counts and points' })),
    unit: Unit,
    expected: Type.Integer({ description: 'What the rows of record say' }),
    actual: Type.Integer({ description: 'What the counter or ledger says' }),
    difference: Type.Integer({ description: 'actual - expected' }),
  }),
);

const Report = Type.Object({
  ...ReconciliationJson.properties,
  items: Type.Array(Mismatch),
  next_cursor: Nullable(Type.Integer({ description: 'Pass as `cursor` for the next page of items' })),
});

const ReportQuery = Type.Object(
  {
    limit: PageQuery.limit,
    cursor: NumericCursor,
    kind: Type.Optional(StringEnum(KIND_NAMES)),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])),
  },
  strict,
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const reconciliationJson = (r: Reconciliation) => ({
  id: r.id,
  status: r.status,
  triggered_by: r.triggeredBy,
  started_at: r.startedAt.toISOString(),
  finished_at: iso(r.finishedAt),
  failure: r.failure,
  summary: r.summary,
});

const mismatchJson = (m: MismatchItem) => ({
  seq: m.seq,
  kind: m.kind,
  campaign_id: m.campaignId,
  entity: m.entity,
  currency: m.currency,
  unit: m.unit,
  expected: m.expected,
  actual: m.actual,
  difference: m.difference,
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const reconciliationRoutes =
  (app: App): Routes =>
  async (server) => {
    // Finance reads and runs them; admin holds every scope.
    const config = { scopes: ['finance' as const] };

    const report = async (r: Reconciliation, query: { limit?: number; cursor?: number; kind?: string }) => {
      const limit = query.limit ?? 50;
      const items = await app.reconciliation.mismatches(r.id, {
        limit: limit + 1,
        after: query.cursor,
        kind: query.kind as MismatchItem['kind'] | undefined,
      });
      const shown = page(items, limit, mismatchJson, (i) => i.seq);
      return { ...reconciliationJson(r), items: shown.data, next_cursor: shown.next_cursor };
    };

    server.post(
      '/reconciliations',
      {
        config,
        schema: {
          tags: ['finance'],
          summary: 'Reconcile now and answer the report (409 while another run is in progress)',
          description:
            'Checks every campaign and the points ledger: ledger sums, spent, counters, balances, events. ' +
            'On a large database this takes a while; `promoguard reconcile` shows progress.',
          body: Type.Object({}, strict),
          response: { 201: Report, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const result = await app.reconciliation.run(actorOf(request));
        if (result.outcome !== 'finished') {
          const running = result.outcome === 'running' ? { reconciliation_id: result.id } : {};
          throw new AppError('reconciliation_running', undefined, running);
        }
        return reply.status(201).send(await report(result.reconciliation, {}));
      },
    );

    server.get(
      '/reconciliations',
      {
        config,
        schema: {
          tags: ['finance'],
          summary: 'List reconciliation reports, newest first',
          querystring: Type.Object(PageQuery, strict),
          response: { 200: Page(ReconciliationJson), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.reconciliation.list({ limit: limit + 1, before: request.query.cursor });
        return page(items, limit, reconciliationJson);
      },
    );

    server.get(
      '/reconciliations/:id',
      {
        config,
        schema: {
          tags: ['finance'],
          summary:
            'A report with its mismatches (pages of items, `?kind=` to filter), or every mismatch as CSV',
          params: Type.Object({ id: Id('rcn') }),
          querystring: ReportQuery,
          response: {
            200: {
              description:
                'The report and a page of its mismatches, or with format=csv every mismatch as text/csv',
              content: {
                'application/json': { schema: Report },
                'text/csv': { schema: Type.String() },
              },
            },
            ...ErrorResponses,
          },
        },
      },
      async (request, reply) => {
        const found = await app.reconciliation.get(request.params.id);
        if (request.query.format === 'csv') {
          reply.header('content-disposition', `attachment; filename="${found.id}.csv"`);
          // Streamed page by page: a report's items never all sit in memory. (The typed reply knows only JSON.)
          const csv = Readable.from(reconciliationCsv(app.reconciliation.iterateMismatches(found.id)));
          return reply.type('text/csv; charset=utf-8').send(csv as unknown as string);
        }
        return reply.type('application/json').send(await report(found, request.query));
      },
    );
  };
