/**
 * The learned score: train on labeled decisions into a shadow model, promote it to enforcing (audited,
 * with a reason), retire it, explain a decision's score, and export or import a model file.
 */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import type { Evaluation } from '../../domain/score-model.js';
import type { ScoreExplanation, TrainingReport } from '../../services/score-models.js';
import type { StoredScoreModel } from '../../store/score-models.js';
import {
  actorOf,
  component,
  DecisionId,
  ErrorResponses,
  iso,
  Nullable,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
  Why,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Version = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const Params = Type.Object({ version: Version });
const Share = Nullable(Type.Number({ minimum: 0, maximum: 1 }));

const ModelEvaluation = component(
  'ScoreModelEvaluation',
  Type.Object({
    count: Type.Integer({ description: 'Held-out labeled decisions scored' }),
    abuse: Type.Integer(),
    threshold: Type.Number(),
    true_positives: Type.Integer(),
    false_positives: Type.Integer(),
    false_negatives: Type.Integer(),
    true_negatives: Type.Integer(),
    precision: Share,
    recall: Share,
    brier: Nullable(Type.Number({ description: 'Mean squared error of the probability' })),
    calibration: Type.Array(
      Type.Object({
        from: Type.Number(),
        to: Type.Number(),
        count: Type.Integer(),
        predicted: Share,
        observed: Share,
      }),
    ),
  }),
);

const ScoreModel = component(
  'ScoreModel',
  Type.Object({
    version: Type.Integer(),
    format: Type.Integer(),
    status: StringEnum(['shadow', 'enforcing', 'retired'] as const),
    features: Type.Array(
      Type.Object({ name: Type.String(), weight: Type.Number(), mean: Type.Number(), scale: Type.Number() }),
      { description: 'Empty when the stored model is of a format this version cannot read' },
    ),
    intercept: Nullable(Type.Number()),
    evaluation: Nullable(ModelEvaluation),
    trained_on: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The period, rows and abuse labels the model was fitted on',
    }),
    created_by: Type.String(),
    created_at: Timestamp,
    promoted_by: Nullable(Type.String()),
    promoted_at: Nullable(Timestamp),
  }),
);

const Train = Type.Object(
  {
    from: Timestamp,
    to: Timestamp,
    steps: Type.Optional(Type.Integer({ minimum: 10, maximum: 20_000, description: 'Gradient steps (500)' })),
  },
  strict,
);

const TrainingResult = Type.Object({
  model: ScoreModel,
  training: Type.Object({ rows: Type.Integer(), abuse: Type.Integer() }),
  holdout: ModelEvaluation,
  truncated: Type.Boolean(),
});

const Explanation = Type.Object({
  decision_id: DecisionId,
  models: Type.Array(
    Type.Object({
      version: Type.Integer(),
      status: Type.String(),
      score: Type.Number({ description: 'Probability of abuse, 0–1' }),
      intercept: Type.Number(),
      contributions: Type.Array(
        Type.Object({
          feature: Type.String(),
          value: Nullable(Type.Number()),
          contribution: Type.Number({ description: 'Share of the log-odds: weight × standardized value' }),
        }),
        { description: 'Largest effect first' },
      ),
    }),
  ),
});

const ModelFile = Type.Object(
  {
    promoguard_model_file: Type.Integer(),
    version: Type.Optional(Type.Integer()),
    model: Type.Unknown(),
    evaluation: Type.Optional(Type.Unknown()),
    trained_on: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false, description: 'A file from `GET /v1/models/{version}/file`' },
);

const Reason = Type.Object({ reason: Why }, strict);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

function evaluationJson(e: Evaluation) {
  return {
    count: e.count,
    abuse: e.abuse,
    threshold: e.threshold,
    true_positives: e.truePositives,
    false_positives: e.falsePositives,
    false_negatives: e.falseNegatives,
    true_negatives: e.trueNegatives,
    precision: e.precision,
    recall: e.recall,
    brier: e.brier,
    calibration: e.calibration,
  };
}

/** A stored model as the API shows it; one of an unknown format shows its status without weights. */
function modelJson(m: StoredScoreModel) {
  const model = m.model as {
    features?: unknown;
    weights?: number[];
    means?: number[];
    scales?: number[];
    intercept?: number;
  };
  const readable = m.format === 1 && Array.isArray(model.features);
  const evaluation = m.evaluation as Partial<Evaluation>;
  return {
    version: m.version,
    format: m.format,
    status: m.status,
    features: readable
      ? (model.features as string[]).map((name, i) => ({
          name,
          weight: model.weights?.[i] ?? 0,
          mean: model.means?.[i] ?? 0,
          scale: model.scales?.[i] ?? 1,
        }))
      : [],
    intercept: readable ? (model.intercept ?? null) : null,
    evaluation: typeof evaluation.count === 'number' ? evaluationJson(evaluation as Evaluation) : null,
    trained_on: m.trainedOn,
    created_by: m.createdBy,
    created_at: iso(m.createdAt) as string,
    promoted_by: m.promotedBy,
    promoted_at: iso(m.promotedAt),
  };
}

const trainingJson = (r: TrainingReport) => ({
  model: modelJson(r.model),
  training: r.training,
  holdout: evaluationJson(r.holdout),
  truncated: r.truncated,
});

const explanationJson = (e: ScoreExplanation) => ({ decision_id: e.decisionId, models: e.models });

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const modelRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };
    const tags = ['risk'];

    server.get(
      '/models',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'List the learned score models, newest first',
          response: { 200: Type.Object({ data: Type.Array(ScoreModel) }), ...ErrorResponses },
        },
      },
      async () => ({ data: (await app.models.list()).map(modelJson) }),
    );

    server.post(
      '/models/train',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Train a model on the labeled decisions of a period; it starts in shadow',
          description:
            'Fits a logistic regression over the numeric features of the decisions labeled in [from, to) ' +
            '(analysts\u2019 labels and reviews, chargebacks and other outcomes), measures it on a fifth held ' +
            'out by decision id, and stores it as the shadow model (the previous shadow is retired). A shadow ' +
            'model is scored and recorded on every decision but read by no rule. At least ten decisions of each ' +
            'label are needed (`422 not_enough_labels`).',
          body: Train,
          response: { 201: TrainingResult, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const report = await app.models.train(
          { from: request.body.from, to: request.body.to, steps: request.body.steps },
          actorOf(request),
        );
        return reply.status(201).send(trainingJson(report));
      },
    );

    server.post(
      '/models/import',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Import a model file as the shadow model',
          description:
            'A file of another layout, or a model of a format this version cannot read, is `422 model_format_unsupported` naming both.',
          body: ModelFile,
          response: { 201: ScoreModel, ...ErrorResponses },
        },
      },
      async (request, reply) =>
        reply.status(201).send(modelJson(await app.models.importFile(request.body, actorOf(request)))),
    );

    server.get(
      '/models/:version',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Read a model: its weights, holdout precision, recall and calibration',
          params: Params,
          response: { 200: ScoreModel, ...ErrorResponses },
        },
      },
      async (request) => modelJson(await app.models.get(request.params.version)),
    );

    server.get(
      '/models/:version/file',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Export a model as a file another installation can import',
          params: Params,
          response: { 200: ModelFile, ...ErrorResponses },
        },
      },
      async (request) => app.models.exportFile(request.params.version),
    );

    server.post(
      '/models/:version/promote',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Make a model the enforcing one (its score becomes `features.model_score`)',
          description:
            'Audited with the reason. The model enforcing before is retired. Every node scores with it for requests begun ' +
            '2 s after the promotion. Rules read the score as `has(features.model_score) && features.model_score > …`.',
          params: Params,
          body: Reason,
          response: { 200: ScoreModel, ...ErrorResponses },
        },
      },
      async (request) =>
        modelJson(await app.models.promote(request.params.version, request.body.reason, actorOf(request))),
    );

    server.post(
      '/models/:version/retire',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Stop a model from scoring (audited with the reason)',
          params: Params,
          body: Reason,
          response: { 200: ScoreModel, ...ErrorResponses },
        },
      },
      async (request) =>
        modelJson(await app.models.retire(request.params.version, request.body.reason, actorOf(request))),
    );

    server.get(
      '/decisions/:id/score',
      {
        config: fraud,
        schema: {
          tags,
          summary: "A stored decision's score under the models in use, with each feature's contribution",
          params: Type.Object({ id: DecisionId }),
          response: { 200: Explanation, ...ErrorResponses },
        },
      },
      async (request) => explanationJson(await app.models.explainDecision(request.params.id)),
    );
  };
