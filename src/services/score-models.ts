/**
 * The learned score's life: train on labeled decisions (analysts' reviews and labels, recorded
 * outcomes such as chargebacks, simulator labels) into a new shadow model, promote a model to
 * enforcing (explicit and audited), retire it, explain a decision's score, and move a model between
 * installations as a file. A shadow model is scored and recorded on every decision but read by no
 * rule, so its figures can be compared with the enforcing one's before anyone relies on it.
 */
import type { FeatureValues } from '../domain/risk.js';
import {
  type Contribution,
  type Evaluation,
  evaluate,
  explain,
  isHoldout,
  MODEL_INPUTS,
  parseScoreModel,
  type ScoreModel,
  ScoreModelFormatError,
  score,
} from '../domain/score-model.js';
import { AppError } from '../errors.js';
import type { RiskEngine } from '../risk/engine.js';
import { type TrainingRow, trainLogistic, usableFeatures } from '../risk/model-training.js';
import { insertAudit } from '../store/audit.js';
import { findDecision } from '../store/risk.js';
import {
  findScoreModel,
  insertShadowModel,
  labeledDecisions,
  listScoreModels,
  promoteScoreModel,
  retireScoreModel,
  type StoredScoreModel,
} from '../store/score-models.js';
import { bumpStamp } from '../store/stamps.js';
import type { Actor, ServiceContext } from './context.js';

/** Fewer rows than this of either label in the training part and a fit means nothing. */
export const MIN_LABELS_PER_CLASS = 10;
/** A training reads at most this many labeled decisions (the newest period first is the caller's choice). */
export const TRAINING_MAX_DECISIONS = 200_000;
const PAGE = 5_000;

/** What a model file carries; `promoguard_model_file` names the file layout. */
export const MODEL_FILE_VERSION = 1;

export interface ModelFile {
  promoguard_model_file: number;
  version: number;
  model: unknown;
  evaluation: unknown;
  trained_on: unknown;
}

export interface TrainingReport {
  model: StoredScoreModel;
  training: { rows: number; abuse: number };
  holdout: Evaluation;
  truncated: boolean;
}

export interface ScoreExplanation {
  decisionId: string;
  models: {
    version: number;
    status: string;
    score: number;
    intercept: number;
    contributions: Contribution[];
  }[];
}

const isUniqueViolation = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';

function readable(stored: StoredScoreModel): ScoreModel {
  try {
    return parseScoreModel(stored.model);
  } catch (err) {
    if (err instanceof ScoreModelFormatError) throw new AppError('model_format_unsupported', err.message);
    throw err;
  }
}

export class ScoreModelService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly engine: RiskEngine,
  ) {}

  list(): Promise<StoredScoreModel[]> {
    return listScoreModels(this.ctx.db);
  }

  async get(version: number): Promise<StoredScoreModel> {
    const model = await findScoreModel(this.ctx.db, version);
    if (!model) throw new AppError('model_not_found', `no score model ${version}`);
    return model;
  }

  /**
   * Fit a model on the labeled decisions of a period, measure it on the held-out fifth, and store it
   * as the shadow model (retiring the previous shadow). `onProgress` hears the rows read so far.
   */
  async train(
    input: { from: Date; to: Date; steps?: number | undefined },
    actor: Actor,
    onProgress?: (read: number) => void,
  ): Promise<TrainingReport> {
    const train: TrainingRow[] = [];
    const holdout: TrainingRow[] = [];
    let after: string | undefined;
    let read = 0;
    let truncated = false;
    for (;;) {
      const page = await labeledDecisions(this.ctx.db, {
        from: input.from,
        to: input.to,
        after,
        limit: PAGE,
      });
      for (const d of page) {
        const row = { features: d.features, label: d.label === 'abuse' ? 1 : 0 } as TrainingRow;
        (isHoldout(d.id) ? holdout : train).push(row);
      }
      read += page.length;
      onProgress?.(read);
      if (page.length < PAGE) break;
      after = page[page.length - 1]?.id;
      if (read >= TRAINING_MAX_DECISIONS) {
        truncated = true;
        break;
      }
    }
    const abuse = train.filter((r) => r.label === 1).length;
    if (abuse < MIN_LABELS_PER_CLASS || train.length - abuse < MIN_LABELS_PER_CLASS) {
      throw new AppError(
        'not_enough_labels',
        `the period holds ${abuse} abuse and ${train.length - abuse} legitimate labeled decisions for training; at least ${MIN_LABELS_PER_CLASS} of each are needed`,
      );
    }
    const features = usableFeatures(train, MODEL_INPUTS);
    const model = trainLogistic(train, features, { steps: input.steps });
    const evaluation = evaluate(
      holdout.map((r) => score(model, r.features)),
      holdout.map((r) => r.label),
    );
    const now = this.ctx.clock.now();
    const trainedOn = {
      from: input.from.toISOString(),
      to: input.to.toISOString(),
      rows: train.length,
      abuse,
      holdout_rows: holdout.length,
      truncated,
    };
    let stored: StoredScoreModel;
    try {
      stored = await this.ctx.db.transaction().execute(async (trx) => {
        const inserted = await insertShadowModel(trx, {
          format: model.format,
          model,
          evaluation,
          trainedOn,
          createdBy: actor,
          now,
        });
        await insertAudit(
          trx,
          {
            actor,
            action: 'model.trained',
            targetId: String(inserted.version),
            reason: null,
            details: {
              trained_on: trainedOn,
              evaluation: { precision: evaluation.precision, recall: evaluation.recall },
            },
          },
          now,
        );
        await bumpStamp(trx, 'models');
        return inserted;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('model_training_conflict');
      throw err;
    }
    this.engine.invalidateModels();
    return { model: stored, training: { rows: train.length, abuse }, holdout: evaluation, truncated };
  }

  /** Make a model the enforcing one (its score becomes `features.model_score`); audited with the reason. */
  async promote(version: number, reason: string, actor: Actor): Promise<StoredScoreModel> {
    const stored = await this.get(version);
    if (stored.status === 'enforcing') throw new AppError('model_already_enforcing');
    readable(stored);
    const now = this.ctx.clock.now();
    const promoted = await this.ctx.db.transaction().execute(async (trx) => {
      const result = await promoteScoreModel(trx, version, actor, now);
      if (!result) throw new AppError('model_not_found', `no score model ${version}`);
      await insertAudit(
        trx,
        {
          actor,
          action: 'model.promoted',
          targetId: String(version),
          reason,
          details: { retired: result.retired },
        },
        now,
      );
      await bumpStamp(trx, 'models');
      return result.promoted;
    });
    this.engine.invalidateModels();
    return promoted;
  }

  /** Stop a model from scoring (enforcing or shadow); rules reading `model_score` then see it absent. */
  async retire(version: number, reason: string, actor: Actor): Promise<StoredScoreModel> {
    await this.get(version);
    const now = this.ctx.clock.now();
    const retired = await this.ctx.db.transaction().execute(async (trx) => {
      const row = await retireScoreModel(trx, version);
      if (!row) throw new AppError('model_not_found', `no score model ${version}`);
      await insertAudit(trx, { actor, action: 'model.retired', targetId: String(version), reason }, now);
      await bumpStamp(trx, 'models');
      return row;
    });
    this.engine.invalidateModels();
    return retired;
  }

  /** A stored decision's score under the models scoring now, with each feature's contribution. */
  async explainDecision(decisionId: string): Promise<ScoreExplanation> {
    const decision = await findDecision(this.ctx.db, decisionId);
    if (!decision) throw new AppError('decision_not_found');
    const features: FeatureValues = {};
    const stored = (decision.decision as { features?: Record<string, unknown> }).features ?? {};
    for (const [name, value] of Object.entries(stored)) {
      if (typeof value === 'number' && Number.isFinite(value)) features[name] = value;
    }
    const models = (await listScoreModels(this.ctx.db)).filter((m) => m.status !== 'retired');
    return {
      decisionId,
      models: models.map((m) => ({
        version: m.version,
        status: m.status,
        ...explain(readable(m), features),
      })),
    };
  }

  /** The model as a file another installation can import. */
  async exportFile(version: number): Promise<ModelFile> {
    const stored = await this.get(version);
    return {
      promoguard_model_file: MODEL_FILE_VERSION,
      version: stored.version,
      model: stored.model,
      evaluation: stored.evaluation,
      trained_on: stored.trainedOn,
    };
  }

  /** Import a model file as the new shadow model; another file layout or model format is refused. */
  async importFile(file: unknown, actor: Actor): Promise<StoredScoreModel> {
    const f = file as Record<string, unknown> | null;
    if (typeof f !== 'object' || f === null || f.promoguard_model_file !== MODEL_FILE_VERSION) {
      throw new AppError(
        'model_format_unsupported',
        `not a Promoguard model file of layout ${MODEL_FILE_VERSION} (found ${String(f?.promoguard_model_file)})`,
      );
    }
    let model: ScoreModel;
    try {
      model = parseScoreModel(f.model);
    } catch (err) {
      if (err instanceof ScoreModelFormatError) throw new AppError('model_format_unsupported', err.message);
      throw err;
    }
    const now = this.ctx.clock.now();
    const trainedOn = { imported: true, ...(typeof f.trained_on === 'object' ? f.trained_on : {}) };
    try {
      const stored = await this.ctx.db.transaction().execute(async (trx) => {
        const inserted = await insertShadowModel(trx, {
          format: model.format,
          model,
          evaluation: f.evaluation ?? {},
          trainedOn,
          createdBy: actor,
          now,
        });
        await insertAudit(
          trx,
          { actor, action: 'model.imported', targetId: String(inserted.version), reason: null, details: {} },
          now,
        );
        await bumpStamp(trx, 'models');
        return inserted;
      });
      this.engine.invalidateModels();
      return stored;
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('model_training_conflict');
      throw err;
    }
  }
}
