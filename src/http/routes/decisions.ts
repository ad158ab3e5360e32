/** Risk decisions: the decision a redemption carries, the stored ones, their labels, the engine's counters. */
import { type Static, Type } from 'typebox';
import type { App } from '../../app.js';
import { RISK_ACTIONS, RULE_MODES } from '../../domain/risk.js';
import { storedInputs } from '../../risk/engine.js';
import type { StoredDecision as StoredDecisionRecord } from '../../store/risk.js';
import {
  actorOf,
  CampaignId,
  component,
  DecisionId,
  ErrorResponses,
  Nullable,
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

export const RiskAction = StringEnum(RISK_ACTIONS);
export const RuleMode = StringEnum(RULE_MODES);
const FeatureValues = Type.Record(Type.String(), Type.Number());

const ModelScore = Type.Object({
  version: Type.Integer(),
  score: Type.Number({ description: 'Probability of abuse, 0–1' }),
});

export const Decision = component(
  'Decision',
  Type.Object(
    {
      id: DecisionId,
      action: RiskAction,
      because: Type.Array(Type.String(), { description: 'The enforced rules that set the action' }),
      rules: Type.Array(
        Type.Object({
          id: Type.String(),
          name: Type.String(),
          action: RiskAction,
          mode: RuleMode,
          reason: Type.String(),
          result: StringEnum(['fired', 'unavailable', 'error'] as const, {
            description:
              '`unavailable`: a feature it reads could not be computed (an enforced rule then sends the attempt to review); `error`: it failed at run time and did not fire',
          }),
          detail: Type.Optional(Type.String()),
          features: FeatureValues,
        }),
        { description: 'Every rule that fired (enforced or shadow), could not be evaluated, or failed' },
      ),
      features: FeatureValues,
      unavailable_features: Type.Array(Type.String()),
      allow_listed: Type.Boolean(),
      challenge_satisfied: Type.Boolean(),
      step_up: Nullable(Type.String()),
      model: Type.Optional(
        Type.Object(
          {
            enforcing: Type.Optional(ModelScore),
            shadow: Type.Optional(ModelScore),
          },
          {
            description:
              'The learned models that scored the attempt; only the enforcing one is `features.model_score`',
          },
        ),
      ),
    },
    { description: 'The risk decision: the action, every rule that fired and the feature values they saw' },
  ),
);

export const Label = StringEnum(['abuse', 'legitimate'] as const);
export const Note = Type.String({ minLength: 1, maxLength: 2000, description: 'Why; kept with the label' });

const StoredDecision = component(
  'StoredDecision',
  Type.Object({
    id: DecisionId,
    created_at: Timestamp,
    operation: Type.String(),
    campaign_id: Type.String(),
    code_id: Type.String(),
    customer_id: Type.String(),
    redemption_id: Nullable(Type.String()),
    action: RiskAction,
    outcome: StringEnum(['redeemed', 'blocked', 'challenged'] as const),
    label: Nullable(Label),
    decision: Decision,
    inputs: Type.Record(Type.String(), Type.Unknown(), {
      description: 'Everything the rules could read: features, request, order, campaign, code, customer',
    }),
  }),
);

const Params = Type.Object({ id: DecisionId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

/** The API form of a decision record (decisionRecord() or a stored one): what the rules saw, not the raw inputs. */
export function decisionJson(record: Record<string, unknown>): Static<typeof Decision> {
  const { inputs: _inputs, ...shown } = record as Static<typeof Decision> & { inputs?: unknown };
  // Maps in key order: a decision read back from jsonb (which reorders keys) answers byte for byte
  // like the one just taken, so an idempotent replay is identical to the first answer.
  const sorted = (m: Record<string, number>) =>
    Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    ...shown,
    features: sorted(shown.features),
    rules: shown.rules.map((r) => ({ ...r, features: sorted(r.features) })),
  };
}

function storedDecisionJson(d: StoredDecisionRecord) {
  return {
    id: d.id,
    created_at: d.createdAt.toISOString(),
    operation: d.operation,
    campaign_id: d.campaignId,
    code_id: d.codeId,
    customer_id: d.customerId,
    redemption_id: d.redemptionId,
    action: d.action,
    outcome: d.outcome,
    label: d.label,
    decision: decisionJson(d.decision),
    inputs: storedInputs(d.decision),
  };
}

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const decisionRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };

    server.get(
      '/decisions',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Stored decisions of a period, oldest first (redemptions made, blocked or challenged)',
          description:
            'The period is `[from, to)`. Without `to` it ends now; without `from` it starts 24 hours before ' +
            'its end, so a request with neither lists the last 24 hours. To page through a fixed period, send ' +
            'both: a default window is taken afresh at each request.',
          querystring: Type.Object(
            {
              ...PageQuery,
              from: Type.Optional(Timestamp),
              to: Type.Optional(Timestamp),
              campaign_id: Type.Optional(CampaignId),
              action: Type.Optional(RiskAction),
            },
            strict,
          ),
          response: { 200: Page(StoredDecision), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.reviews.decisions({
          from: request.query.from,
          to: request.query.to,
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
          params: Params,
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
          params: Params,
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
