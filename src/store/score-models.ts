/** Learned scoring models (versioned, one shadow and one enforcing at most) and their training rows. */
import { type Kysely, type Selectable, sql } from 'kysely';
import type { FeatureValues } from '../domain/risk.js';
import { parseJsonResult } from './rows.js';
import type { Database, ScoreModelStatus, ScoreModelsTable } from './schema.js';

export interface StoredScoreModel {
  version: number;
  format: number;
  status: ScoreModelStatus;
  /** As stored: read it with parseScoreModel, which refuses a format this version does not know. */
  model: unknown;
  evaluation: Record<string, unknown>;
  trainedOn: Record<string, unknown>;
  createdBy: string;
  createdAt: Date;
  promotedBy: string | null;
  promotedAt: Date | null;
}

function fromRow(row: Selectable<ScoreModelsTable>): StoredScoreModel {
  return {
    version: row.version,
    format: row.format,
    status: row.status,
    model: parseJsonResult(row.model),
    evaluation: parseJsonResult<Record<string, unknown>>(row.evaluation),
    trainedOn: parseJsonResult<Record<string, unknown>>(row.trained_on),
    createdBy: row.created_by,
    createdAt: row.created_at,
    promotedBy: row.promoted_by,
    promotedAt: row.promoted_at,
  };
}

export async function listScoreModels(db: Kysely<Database>): Promise<StoredScoreModel[]> {
  const rows = await db.selectFrom('score_models').selectAll().orderBy('version', 'desc').execute();
  return rows.map(fromRow);
}

/** The models a decision scores with: the enforcing one and the shadow one, if any. */
export async function activeScoreModels(db: Kysely<Database>): Promise<StoredScoreModel[]> {
  const rows = await db
    .selectFrom('score_models')
    .selectAll()
    .where('status', 'in', ['shadow', 'enforcing'])
    .execute();
  return rows.map(fromRow);
}

export async function findScoreModel(
  db: Kysely<Database>,
  version: number,
): Promise<StoredScoreModel | null> {
  const row = await db
    .selectFrom('score_models')
    .selectAll()
    .where('version', '=', version)
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

/**
 * Store a new model in shadow, retiring the shadow model before it. The version is the next one;
 * two trainings at once collide on it and one fails (the caller reports a conflict).
 */
export async function insertShadowModel(
  trx: Kysely<Database>,
  m: {
    format: number;
    model: unknown;
    evaluation: unknown;
    trainedOn: unknown;
    createdBy: string;
    now: Date;
  },
): Promise<StoredScoreModel> {
  await trx.updateTable('score_models').set({ status: 'retired' }).where('status', '=', 'shadow').execute();
  const row = await trx
    .insertInto('score_models')
    .columns(['version', 'format', 'status', 'model', 'evaluation', 'trained_on', 'created_by', 'created_at'])
    .expression((eb) =>
      eb
        .selectFrom('score_models')
        .select([
          sql<number>`coalesce(max(version), 0) + 1`.as('version'),
          sql<number>`${m.format}::integer`.as('format'),
          sql<string>`'shadow'`.as('status'),
          sql<string>`${JSON.stringify(m.model)}::jsonb`.as('model'),
          sql<string>`${JSON.stringify(m.evaluation)}::jsonb`.as('evaluation'),
          sql<string>`${JSON.stringify(m.trainedOn)}::jsonb`.as('trained_on'),
          sql<string>`${m.createdBy}::text`.as('created_by'),
          sql<Date>`${m.now.toISOString()}::timestamptz`.as('created_at'),
        ]),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  return fromRow(row);
}

/** Make a model the enforcing one; the one enforcing before is retired. Null when there is no such model. */
export async function promoteScoreModel(
  trx: Kysely<Database>,
  version: number,
  actor: string,
  now: Date,
): Promise<{ promoted: StoredScoreModel; retired: number | null } | null> {
  const previous = await trx
    .updateTable('score_models')
    .set({ status: 'retired' })
    .where('status', '=', 'enforcing')
    .where('version', '<>', version)
    .returning('version')
    .executeTakeFirst();
  const row = await trx
    .updateTable('score_models')
    .set({ status: 'enforcing', promoted_by: actor, promoted_at: now })
    .where('version', '=', version)
    .returningAll()
    .executeTakeFirst();
  return row ? { promoted: fromRow(row), retired: previous?.version ?? null } : null;
}

export async function retireScoreModel(
  trx: Kysely<Database>,
  version: number,
): Promise<StoredScoreModel | null> {
  const row = await trx
    .updateTable('score_models')
    .set({ status: 'retired' })
    .where('version', '=', version)
    .returningAll()
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

export interface LabeledDecision {
  id: string;
  createdAt: Date;
  features: FeatureValues;
  label: 'abuse' | 'legitimate';
}

/** Labeled decisions of a period in id order, a page at a time (`after` = the last id seen). */
export async function labeledDecisions(
  db: Kysely<Database>,
  filter: { from: Date; to: Date; after?: string | undefined; limit: number },
): Promise<LabeledDecision[]> {
  let query = db
    .selectFrom('risk_decisions as d')
    .innerJoin('risk_labels as l', 'l.decision_id', 'd.id')
    .select(['d.id', 'd.created_at', 'd.decision', 'l.label'])
    .where('d.created_at', '>=', filter.from)
    .where('d.created_at', '<', filter.to)
    .orderBy('d.id')
    .limit(filter.limit);
  if (filter.after) query = query.where('d.id', '>', filter.after);
  const rows = await query.execute();
  return rows.map((r) => {
    const decision = parseJsonResult<{ features?: Record<string, unknown> }>(r.decision);
    const features: FeatureValues = {};
    for (const [name, value] of Object.entries(decision.features ?? {})) {
      if (typeof value === 'number' && Number.isFinite(value)) features[name] = value;
    }
    return { id: r.id, createdAt: r.created_at, features, label: r.label };
  });
}
