/**
 * Risk rules: CEL expressions type-checked on save, run in shadow or enforced; backtests over stored
 * decisions; the feature registry they read.
 */
import { type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { FEATURES } from '../../domain/risk.js';
import { MAX_EXPRESSION_LENGTH, RULE_VARIABLES } from '../../risk/rule-language.js';
import type { BacktestResult as BacktestRecord, RuleInput } from '../../services/rules.js';
import type { RiskRule, RulePatch as RulePatchFields } from '../../store/risk.js';
import {
  actorOf,
  CampaignId,
  component,
  ErrorResponses,
  iso,
  Nullable,
  type Routes,
  strict,
  Text,
  Timestamp,
} from '../shared.js';
import { RiskAction, RuleMode } from './decisions.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const RuleId = Type.String({ pattern: '^rule_[0-9A-Za-z_]{1,64}$' });

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
  precision: Nullable(Type.Number()),
  recall: Nullable(Type.Number()),
  sample_hits: Type.Array(Type.String()),
  truncated: Type.Boolean(),
});

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
    precision: b.precision,
    recall: b.recall,
    sample_hits: b.sampleHits,
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
