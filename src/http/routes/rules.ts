/**
 * Risk rules: CEL expressions type-checked on save, run in shadow or enforced; backtests over stored
 * decisions; the feature registry they read.
 */
import { type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { FEATURES, HOLD_WITH } from '../../domain/risk.js';
import { MAX_EXPRESSION_LENGTH, RULE_VARIABLES } from '../../risk/rule-language.js';
import {
  type BacktestExample as BacktestExampleRecord,
  type BacktestResult as BacktestRecord,
  EXAMPLES_PER_CELL,
  type RuleInput,
  type RuleStatsResult,
  STATS_MAX_DAYS,
} from '../../services/rules.js';
import type { RiskRule, RulePatch as RulePatchFields } from '../../store/risk.js';
import {
  actorOf,
  CampaignId,
  component,
  ErrorResponses,
  iso,
  Nullable,
  type Routes,
  StringEnum,
  strict,
  Text,
  Timestamp,
} from '../shared.js';
import { RiskAction, RuleMode } from './decisions.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const RuleId = Type.String({ pattern: '^rule_[0-9A-Za-z_]{1,64}$' });

const HoldWithSchema = StringEnum(HOLD_WITH, {
  description:
    'A review rule only: when it holds a redemption, also hold the earlier ones of accounts younger than a day ' +
    'that are not reviewed nor rolled back — of the same code in the last 24 hours (`code_new_accounts_24h`) ' +
    'or of the same campaign in the last hour (`campaign_new_accounts_1h`); each gets a `redemption.held` event',
});

const Expression = Type.String({
  minLength: 1,
  maxLength: MAX_EXPRESSION_LENGTH,
  description: 'A CEL expression yielding a bool over features, request, order, campaign, code and customer',
});

const Rule = component(
  'Rule',
  Type.Object({
    id: RuleId,
    name: Type.String(),
    description: Type.String(),
    expression: Type.String(),
    action: RiskAction,
    reason: Type.String(),
    mode: RuleMode,
    hold_with: Nullable(HoldWithSchema),
    campaign_id: Nullable(CampaignId),
    expires_at: Nullable(Timestamp),
    enabled: Type.Boolean(),
    pack: Nullable(Type.String({ description: '`default` for a shipped rule' })),
    version: Type.Integer(),
    created_by: Type.String(),
    created_at: Timestamp,
    updated_at: Timestamp,
  }),
);

const RuleFields = {
  name: Text(120),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  expression: Expression,
  action: RiskAction,
  reason: Text(500, 'Shown to analysts with every decision the rule takes part in'),
  mode: RuleMode,
  hold_with: Type.Optional(Nullable(HoldWithSchema)),
  campaign_id: Type.Optional(Nullable(CampaignId)),
  expires_at: Type.Optional(Nullable(Timestamp)),
  enabled: Type.Optional(Type.Boolean()),
};

const RuleCreate = Type.Object(RuleFields, strict);
const RulePatch = Type.Object(
  {
    name: Type.Optional(RuleFields.name),
    description: RuleFields.description,
    expression: Type.Optional(Expression),
    action: Type.Optional(RiskAction),
    reason: Type.Optional(RuleFields.reason),
    mode: Type.Optional(RuleMode),
    hold_with: RuleFields.hold_with,
    campaign_id: RuleFields.campaign_id,
    expires_at: RuleFields.expires_at,
    enabled: RuleFields.enabled,
  },
  { ...strict, minProperties: 1 },
);

const BacktestPeriod = Type.Object(
  { from: Timestamp, to: Timestamp, campaign_id: Type.Optional(Nullable(CampaignId)) },
  strict,
);

const BacktestExample = Type.Object({
  id: Type.String({ description: 'The decision (GET /v1/decisions/{id})' }),
  created_at: Timestamp,
  campaign_id: Type.String(),
  customer_id: Type.String(),
  redemption_id: Nullable(Type.String()),
  action: RiskAction,
  outcome: Type.String({ description: 'redeemed, blocked or challenged' }),
});

const CellExamples = Type.Array(BacktestExample, {
  maxItems: EXAMPLES_PER_CELL,
  description: `The first ${EXAMPLES_PER_CELL} decisions of the cell, oldest first`,
});

const BacktestResult = Type.Object({
  from: Timestamp,
  to: Timestamp,
  evaluated: Type.Integer(),
  hits: Type.Integer(),
  unavailable: Type.Integer(),
  errors: Type.Integer(),
  hits_by_outcome: Type.Record(Type.String(), Type.Integer()),
  labeled: Type.Object({ abuse: Type.Integer(), legitimate: Type.Integer() }),
  true_positives: Type.Integer(),
  false_positives: Type.Integer(),
  false_negatives: Type.Integer(),
  true_negatives: Type.Integer({ description: 'Labeled legitimate decisions the rule stays silent on' }),
  precision: Nullable(Type.Number()),
  recall: Nullable(Type.Number()),
  sample_hits: Type.Array(Type.String()),
  examples: Type.Object(
    {
      true_positives: CellExamples,
      false_positives: CellExamples,
      false_negatives: CellExamples,
      true_negatives: CellExamples,
    },
    { description: 'Decisions of each cell of the confusion matrix (rule fires or not × label)' },
  ),
  truncated: Type.Boolean(),
});

const RuleHits = component(
  'RuleHits',
  Type.Object({
    rule_id: RuleId,
    decisions: Type.Integer({
      description:
        'Stored decisions of the period the rule applies to since it was created: the operations whose ' +
        'variables and features it reads (redemptions, conversions, wallet reads), its campaign’s redemptions if it has one',
    }),
    hits: Type.Integer({ description: 'Decisions it fired on, in either mode' }),
    enforced_hits: Type.Integer({ description: 'Hits while it was enforced' }),
    shadow_hits: Type.Integer({ description: 'Hits while it was in shadow' }),
    unavailable: Type.Integer({
      description: 'Decisions it could not be evaluated on (a feature was missing)',
    }),
    errors: Type.Integer({ description: 'Decisions it failed on at run time' }),
    hit_rate: Nullable(Type.Number({ description: 'hits / decisions; null without decisions' })),
    shadow: Type.Array(
      Type.Object({
        decided: RiskAction,
        would_be: RiskAction,
        decisions: Type.Integer(),
      }),
      {
        description:
          'Decisions it fired on (or could not be evaluated on) while in shadow, by the action taken and the ' +
          'one enforcing it would have led to; `decided` ≠ `would_be` is a decision it would have changed',
      },
    ),
  }),
);

const Params = Type.Object({ id: RuleId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

/** A create or a patch body as the service takes it (absent fields stay undefined). */
function ruleFromBody(b: StaticDecode<typeof RuleCreate>): RuleInput;
function ruleFromBody(b: StaticDecode<typeof RulePatch>): RulePatchFields;
function ruleFromBody(b: StaticDecode<typeof RulePatch>): RulePatchFields {
  return {
    name: b.name,
    description: b.description,
    expression: b.expression,
    action: b.action,
    reason: b.reason,
    mode: b.mode,
    holdWith: b.hold_with,
    campaignId: b.campaign_id,
    expiresAt: b.expires_at,
    enabled: b.enabled,
  };
}

function ruleJson(r: RiskRule) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    expression: r.expression,
    action: r.action,
    reason: r.reason,
    mode: r.mode,
    hold_with: r.holdWith,
    campaign_id: r.campaignId,
    expires_at: iso(r.expiresAt),
    enabled: r.enabled,
    pack: r.pack,
    version: r.version,
    created_by: r.createdBy,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

function exampleJson(e: BacktestExampleRecord) {
  return {
    id: e.id,
    created_at: e.createdAt.toISOString(),
    campaign_id: e.campaignId,
    customer_id: e.customerId,
    redemption_id: e.redemptionId,
    action: e.action,
    outcome: e.outcome,
  };
}

function statsJson(s: RuleStatsResult) {
  return {
    from: s.from.toISOString(),
    to: s.to.toISOString(),
    decisions: s.decisions,
    data: s.rules.map((r) => ({
      rule_id: r.ruleId,
      decisions: r.decisions,
      hits: r.hits,
      enforced_hits: r.enforcedHits,
      shadow_hits: r.shadowHits,
      unavailable: r.unavailable,
      errors: r.errors,
      hit_rate: r.hitRate,
      shadow: r.shadow.map((t) => ({ decided: t.decided, would_be: t.wouldBe, decisions: t.decisions })),
    })),
  };
}

function backtestJson(b: BacktestRecord) {
  return {
    from: b.from.toISOString(),
    to: b.to.toISOString(),
    evaluated: b.evaluated,
    hits: b.hits,
    unavailable: b.unavailable,
    errors: b.errors,
    hits_by_outcome: b.hitsByOutcome,
    labeled: b.labeled,
    true_positives: b.truePositives,
    false_positives: b.falsePositives,
    false_negatives: b.falseNegatives,
    true_negatives: b.trueNegatives,
    precision: b.precision,
    recall: b.recall,
    sample_hits: b.sampleHits,
    examples: {
      true_positives: b.examples.true_positives.map(exampleJson),
      false_positives: b.examples.false_positives.map(exampleJson),
      false_negatives: b.examples.false_negatives.map(exampleJson),
      true_negatives: b.examples.true_negatives.map(exampleJson),
    },
    truncated: b.truncated,
  };
}

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const ruleRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };

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

    server.get(
      '/rules/stats',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: "Each rule's hits and hit rate over the stored decisions of a period, enforced and shadow",
          description:
            'The period is `[from, to)`: `to` defaults to now, `from` to 24 hours before `to`; it spans at most ' +
            `${STATS_MAX_DAYS} days. Stored decisions are redemption attempts (made, blocked or challenged) and ` +
            "loyalty operations (conversions, wallet reads). A rule's rate is its hits over the stored decisions " +
            'it applies to since it was created. For the time a rule ran in shadow, `shadow` sets the action each ' +
            'decision took beside the one it would have taken had the rule been enforced.',
          querystring: Type.Object({ from: Type.Optional(Timestamp), to: Type.Optional(Timestamp) }, strict),
          response: {
            200: Type.Object({
              from: Timestamp,
              to: Timestamp,
              decisions: Type.Integer({ description: 'All stored decisions of the period' }),
              data: Type.Array(RuleHits),
            }),
            ...ErrorResponses,
          },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        const to = request.query.to ?? new Date();
        const from = request.query.from ?? new Date(to.getTime() - 86_400_000);
        return statsJson(await app.rules.stats({ from, to }));
      },
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
            'rule to every request begun 2 s after the commit. Resolution: allow-list > block > challenge > ' +
            'review > allow; shadow rules are recorded on the decision and never act.',
          body: RuleCreate,
          response: { 201: Rule, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const rule = await app.rules.create(ruleFromBody(request.body), actorOf(request));
        return reply.status(201).send(ruleJson(rule));
      },
    );

    server.post(
      '/rules/check',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Type-check an expression without saving it',
          description:
            'A refusal is a 400 `rule_invalid` whose `errors[0]` carries the message and, when the checker names ' +
            'one, the `position` it points at: `offset` and `end` (UTF-16 code units into the expression) and ' +
            '`line` and `column` (from 1).',
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
            { from: request.body.from, to: request.body.to },
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
          params: Params,
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
          params: Params,
          body: RulePatch,
          response: { 200: Rule, ...ErrorResponses },
        },
      },
      async (request) =>
        ruleJson(await app.rules.update(request.params.id, ruleFromBody(request.body), actorOf(request))),
    );

    server.delete(
      '/rules/:id',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Delete a rule (a deleted shipped rule is not re-created)',
          params: Params,
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
          params: Params,
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
            { from: request.body.from, to: request.body.to },
          ),
        );
      },
    );
  };
