/**
 * The fraud analyst's routes: rules (CEL, type-checked on save, shadow or enforce), backtests over
 * stored decisions, the feature registry, the review queue, decision labels and the engine's counters.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { FEATURES } from '../../domain/risk.js';
import { RULE_VARIABLES } from '../../risk/rule-language.js';
import type { RuleInput } from '../../services/rules.js';
import type { RulePatch as RulePatchFields } from '../../store/risk.js';
import {
  actorOf,
  backtestJson,
  decisionJson,
  page,
  redemptionJson,
  ruleJson,
  storedDecisionJson,
} from '../present.js';
import { parseTimestamp } from '../problem.js';
import {
  BacktestResult,
  CampaignId,
  Decision,
  DecisionId,
  ErrorResponses,
  Expression,
  Label,
  Nullable,
  Page,
  PageQuery,
  Period,
  Redemption,
  RedemptionId,
  RiskAction,
  Rule,
  RuleCreate,
  RuleId,
  RulePatch,
  StoredDecision,
  strict,
  Timestamp,
} from '../schemas.js';

const Note = Type.String({ minLength: 1, maxLength: 2000, description: 'Why; kept with the label' });

const Review = Type.Object({
  redemption: Redemption,
  decision: Nullable(Decision),
  linked_accounts: Type.Object({
    person_id: Nullable(Type.String()),
    customers: Type.Array(Type.String()),
    shared_identifiers: Type.Array(
      Type.Object({ type: Type.String(), hash: Type.String(), customers: Type.Array(Type.String()) }),
    ),
  }),
});

const BacktestPeriod = Type.Object(
  {
    ...Period,
    campaign_id: Type.Optional(Nullable(CampaignId)),
  },
  strict,
);

export const riskRoutes =
  (app: App): FastifyPluginAsyncTypebox =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };
    const RuleParams = Type.Object({ id: RuleId });

    server.get(
      '/rules/features',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'The feature registry and every variable a rule may read',
          response: {
            200: Type.Object({
              features: Type.Array(
                Type.Object({
                  name: Type.String(),
                  entity: Type.String(),
                  window_seconds: Nullable(Type.Integer()),
                  statistic: Type.String(),
                  type: Type.String(),
                  source: Type.String(),
                  description: Type.String(),
                }),
              ),
              variables: Type.Record(Type.String(), Type.Record(Type.String(), Type.String())),
            }),
            ...ErrorResponses,
          },
        },
      },
      async () => ({
        features: FEATURES.map((f) => ({
          name: f.name,
          entity: f.entity,
          window_seconds: f.windowMs === null ? null : f.windowMs / 1000,
          statistic: f.statistic,
          type: f.type,
          source: f.source,
          description: f.description,
        })),
        variables: RULE_VARIABLES,
      }),
    );

    server.get(
      '/rules',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'List the rules (shipped and your own), oldest first',
          response: { 200: Type.Object({ data: Type.Array(Rule) }), ...ErrorResponses },
        },
      },
      async () => ({ data: (await app.rules.list()).map(ruleJson) }),
    );

    server.post(
      '/rules',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Create a rule',
          description:
            'The expression is type-checked now: an unknown feature or field, a comparison of a count with a ' +
            'string, or a result that is not a bool is a 400 `rule_invalid` naming it. Every node applies a new ' +
            'rule within about two seconds. Resolution: allow-list > block > challenge > review > allow; ' +
            'shadow rules are recorded on the decision and never act.',
          body: RuleCreate,
          response: { 201: Rule, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const input: RuleInput = {
          name: b.name,
          description: b.description,
          expression: b.expression,
          action: b.action,
          reason: b.reason,
          mode: b.mode,
          campaignId: b.campaign_id,
          expiresAt: b.expires_at ? parseTimestamp(b.expires_at, 'body/expires_at') : null,
          enabled: b.enabled,
        };
        return reply.status(201).send(ruleJson(await app.rules.create(input, actorOf(request))));
      },
    );

    server.post(
      '/rules/check',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Type-check an expression without saving it',
          body: Type.Object({ expression: Expression }, strict),
          response: { 200: Type.Object({ features: Type.Array(Type.String()) }), ...ErrorResponses },
        },
      },
      async (request) => app.rules.check(request.body.expression),
    );

    server.post(
      '/rules/backtest',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Backtest a draft rule over the stored decisions of a period',
          description:
            'Evaluates the expression over what each stored decision saw (redemptions made, blocked or ' +
            'challenged) in [from, to), and scores it against the labels present: precision = labeled hits ' +
            'that are abuse; recall = abuse labels the rule hits.',
          body: Type.Object({ expression: Expression, ...BacktestPeriod.properties }, strict),
          response: { 200: BacktestResult, ...ErrorResponses },
        },
      },
      async (request) =>
        backtestJson(
          await app.rules.backtest(
            { expression: request.body.expression, campaignId: request.body.campaign_id ?? null },
            {
              from: parseTimestamp(request.body.from, 'body/from'),
              to: parseTimestamp(request.body.to, 'body/to'),
            },
          ),
        ),
    );

    server.get(
      '/rules/:id',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Read a rule',
          params: RuleParams,
          response: { 200: Rule, ...ErrorResponses },
        },
      },
      async (request) => ruleJson(await app.rules.get(request.params.id)),
    );

    server.patch(
      '/rules/:id',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Change a rule (e.g. promote it from shadow to enforce, disable it)',
          params: RuleParams,
          body: RulePatch,
          response: { 200: Rule, ...ErrorResponses },
        },
      },
      async (request) => {
        const b = request.body;
        const patch: RulePatchFields = {
          name: b.name,
          description: b.description,
          expression: b.expression,
          action: b.action,
          reason: b.reason,
          mode: b.mode,
          campaignId: b.campaign_id,
          expiresAt:
            b.expires_at === undefined
              ? undefined
              : b.expires_at === null
                ? null
                : parseTimestamp(b.expires_at, 'body/expires_at'),
          enabled: b.enabled,
        };
        return ruleJson(await app.rules.update(request.params.id, patch, actorOf(request)));
      },
    );

    server.delete(
      '/rules/:id',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Delete a rule (a deleted shipped rule is not re-created)',
          params: RuleParams,
          response: { 204: Type.Null(), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        await app.rules.remove(request.params.id, actorOf(request));
        return reply.status(204).send(null);
      },
    );

    server.post(
      '/rules/:id/backtest',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Backtest a saved rule over the stored decisions of a period',
          params: RuleParams,
          body: BacktestPeriod,
          response: { 200: BacktestResult, ...ErrorResponses },
        },
      },
      async (request) => {
        const rule = await app.rules.get(request.params.id);
        return backtestJson(
          await app.rules.backtest(
            {
              expression: rule.expression,
              campaignId: request.body.campaign_id === undefined ? rule.campaignId : request.body.campaign_id,
            },
            {
              from: parseTimestamp(request.body.from, 'body/from'),
              to: parseTimestamp(request.body.to, 'body/to'),
            },
          ),
        );
      },
    );

    server.get(
      '/reviews',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Redemptions held for review, oldest first, with their decision and linked accounts',
          querystring: Type.Object(
            { ...PageQuery, campaign_id: Type.Optional(CampaignId) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ ...Page(Review).properties, pending: Type.Integer() }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const [items, pending] = await Promise.all([
          app.reviews.pending({
            limit: limit + 1,
            after: request.query.cursor,
            campaignId: request.query.campaign_id,
          }),
          app.reviews.queueLength(),
        ]);
        return {
          ...page(
            items,
            limit,
            (item) => ({
              redemption: redemptionJson(item.redemption),
              decision: item.decision ? decisionJson(item.decision.decision) : null,
              linked_accounts: {
                person_id: item.links.personId,
                customers: item.links.customers,
                shared_identifiers: item.links.sharedIdentifiers.map((s) => ({
                  type: s.type,
                  hash: s.hash,
                  customers: s.customers,
                })),
              },
            }),
            (item) => item.redemption.id,
          ),
          pending,
        };
      },
    );

    const ReviewParams = Type.Object({ id: RedemptionId });
    const Verdict = Type.Object(
      {
        label: Type.Optional(
          Type.Union([Label], {
            description: 'Default: `legitimate` for an approval, `abuse` for a rejection',
          }),
        ),
        note: Type.Optional(Note),
      },
      strict,
    );

    for (const verdict of ['approve', 'reject'] as const) {
      server.post(
        `/reviews/:id/${verdict}`,
        {
          config: fraud,
          schema: {
            tags: ['risk'],
            summary:
              verdict === 'approve'
                ? 'Approve a held redemption'
                : 'Reject a held redemption: it is rolled back (exactly once) and `review.rejected` is emitted',
            description:
              'Repeating the same verdict returns the redemption unchanged; the other verdict afterwards is a ' +
              '409 `review_already_decided`. The label is kept on the decision (training data, rule precision).',
            params: ReviewParams,
            body: Verdict,
            response: { 200: Redemption, ...ErrorResponses },
          },
        },
        async (request) =>
          redemptionJson(
            await app.reviews.decide(
              request.params.id,
              verdict,
              request.body.label,
              request.body.note ?? null,
              actorOf(request),
            ),
          ),
      );
    }

    const DecisionParams = Type.Object({ id: DecisionId });

    server.get(
      '/decisions',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Stored decisions of a period, oldest first (redemptions made, blocked or challenged)',
          querystring: Type.Object(
            {
              ...PageQuery,
              from: Timestamp,
              to: Timestamp,
              campaign_id: Type.Optional(CampaignId),
              action: Type.Optional(RiskAction),
            },
            { additionalProperties: false },
          ),
          response: { 200: Page(StoredDecision), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.reviews.decisions({
          from: parseTimestamp(request.query.from, 'querystring/from'),
          to: parseTimestamp(request.query.to, 'querystring/to'),
          after: request.query.cursor,
          limit: limit + 1,
          campaignId: request.query.campaign_id,
          action: request.query.action,
        });
        return page(items, limit, storedDecisionJson);
      },
    );

    server.get(
      '/decisions/:id',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'A stored decision with everything its rules could read',
          params: DecisionParams,
          response: { 200: StoredDecision, ...ErrorResponses },
        },
      },
      async (request) => storedDecisionJson(await app.reviews.decision(request.params.id)),
    );

    server.post(
      '/decisions/:id/label',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Label a decision as abuse or legitimate (the latest label counts)',
          params: DecisionParams,
          body: Type.Object({ label: Label, note: Type.Optional(Note) }, strict),
          response: { 200: StoredDecision, ...ErrorResponses },
        },
      },
      async (request) =>
        storedDecisionJson(
          await app.reviews.label(
            request.params.id,
            request.body.label,
            request.body.note ?? null,
            actorOf(request),
          ),
        ),
    );

    server.get(
      '/risk/stats',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: "This node's decision counters since start, and the review queue length",
          response: {
            200: Type.Object({
              decisions: Type.Object({
                allow: Type.Integer(),
                review: Type.Integer(),
                challenge: Type.Integer(),
                block: Type.Integer(),
              }),
              feature_errors: Type.Integer({ description: 'Feature reads that failed or timed out' }),
              fail_open_reviews: Type.Integer({
                description: 'Decisions sent to review because a rule read an unavailable feature',
              }),
              rule_errors: Type.Integer({ description: 'Rule evaluations that failed at run time' }),
              record_errors: Type.Integer({
                description: 'Attempts whose feature counters could not be recorded',
              }),
              pending_reviews: Type.Integer(),
            }),
            ...ErrorResponses,
          },
        },
      },
      async () => {
        const s = app.risk.stats;
        return {
          decisions: { ...s.decisions },
          feature_errors: s.featureErrors,
          fail_open_reviews: s.failOpenReviews,
          rule_errors: s.ruleErrors,
          record_errors: s.recordErrors,
          pending_reviews: await app.reviews.queueLength(),
        };
      },
    );
  };
