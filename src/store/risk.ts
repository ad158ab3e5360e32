/** Rules, stored decisions, labels and reviews of the risk engine. */
import { type Kysely, sql } from 'kysely';
import type { RiskAction, RuleMode } from '../domain/risk.js';
import { retryOnConflict } from './retry.js';
import {
  parseJsonResult,
  type Redemption,
  type Row,
  redemptionFromRow,
  toDate,
  toDateOrNull,
  toNumber,
} from './rows.js';
import type { Database } from './schema.js';

export interface RiskRule {
  id: string;
  name: string;
  description: string;
  expression: string;
  action: RiskAction;
  reason: string;
  mode: RuleMode;
  campaignId: string | null;
  expiresAt: Date | null;
  enabled: boolean;
  pack: string | null;
  version: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export type RuleLabel = 'abuse' | 'legitimate';

function ruleFromRow(row: Row): RiskRule {
  return {
    id: String(row.id),
    name: String(row.name),
    description: String(row.description),
    expression: String(row.expression),
    action: row.action as RiskAction,
    reason: String(row.reason),
    mode: row.mode as RuleMode,
    campaignId: row.campaign_id === null ? null : String(row.campaign_id),
    expiresAt: toDateOrNull(row.expires_at),
    enabled: Boolean(row.enabled),
    pack: row.pack === null ? null : String(row.pack),
    version: toNumber(row.version),
    createdBy: String(row.created_by),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export type NewRule = Omit<RiskRule, 'version' | 'createdAt' | 'updatedAt'>;

/** Insert a rule; with `ifAbsent`, an existing id (also a deleted one) is left alone. */
export async function insertRule(
  db: Kysely<Database>,
  rule: NewRule,
  now: Date,
  ifAbsent = false,
): Promise<RiskRule | null> {
  const { rows } = await sql<Row>`
    INSERT INTO risk_rules (id, name, description, expression, action, reason, mode, campaign_id, expires_at,
                            enabled, pack, created_by, created_at, updated_at)
    VALUES (${rule.id}, ${rule.name}, ${rule.description}, ${rule.expression}, ${rule.action}, ${rule.reason},
            ${rule.mode}, ${rule.campaignId}, ${rule.expiresAt}, ${rule.enabled}, ${rule.pack}, ${rule.createdBy},
            ${now}, ${now})
    ${ifAbsent ? sql`ON CONFLICT (id) DO NOTHING` : sql``}
    RETURNING *`.execute(db);
  return rows[0] ? ruleFromRow(rows[0]) : null;
}

export type RulePatch = Partial<
  Pick<
    RiskRule,
    | 'name'
    | 'description'
    | 'expression'
    | 'action'
    | 'reason'
    | 'mode'
    | 'campaignId'
    | 'expiresAt'
    | 'enabled'
  >
>;

const PATCH_COLUMNS: Record<keyof RulePatch, string> = {
  name: 'name',
  description: 'description',
  expression: 'expression',
  action: 'action',
  reason: 'reason',
  mode: 'mode',
  campaignId: 'campaign_id',
  expiresAt: 'expires_at',
  enabled: 'enabled',
};

export async function updateRule(
  db: Kysely<Database>,
  id: string,
  patch: RulePatch,
  now: Date,
): Promise<RiskRule | null> {
  const sets = Object.entries(patch)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => sql`${sql.ref(PATCH_COLUMNS[k as keyof RulePatch])} = ${v}`);
  const { rows } = await sql<Row>`
    UPDATE risk_rules SET ${sql.join([...sets, sql`version = version + 1`, sql`updated_at = ${now}`])}
     WHERE id = ${id} AND deleted_at IS NULL
    RETURNING *`.execute(db);
  return rows[0] ? ruleFromRow(rows[0]) : null;
}

/** Soft delete: the id stays taken, so a shipped rule an analyst deleted is not re-created. */
export async function deleteRule(db: Kysely<Database>, id: string, now: Date): Promise<boolean> {
  const { rows } = await sql<Row>`
    UPDATE risk_rules SET deleted_at = ${now}, enabled = false, updated_at = ${now}, version = version + 1
     WHERE id = ${id} AND deleted_at IS NULL RETURNING id`.execute(db);
  return rows.length > 0;
}

export async function findRule(db: Kysely<Database>, id: string): Promise<RiskRule | null> {
  const { rows } = await sql<Row>`SELECT * FROM risk_rules WHERE id = ${id} AND deleted_at IS NULL`.execute(
    db,
  );
  return rows[0] ? ruleFromRow(rows[0]) : null;
}

export async function listRules(db: Kysely<Database>): Promise<RiskRule[]> {
  const { rows } = await sql<Row>`
    SELECT * FROM risk_rules WHERE deleted_at IS NULL ORDER BY created_at, id`.execute(db);
  return rows.map(ruleFromRow);
}

export interface StoredDecision {
  id: string;
  createdAt: Date;
  operation: string;
  campaignId: string;
  codeId: string;
  customerId: string;
  redemptionId: string | null;
  action: RiskAction;
  outcome: 'redeemed' | 'blocked' | 'challenged';
  decision: Record<string, unknown>;
  label: RuleLabel | null;
}

function decisionFromRow(row: Row): StoredDecision {
  return {
    id: String(row.id),
    createdAt: toDate(row.created_at),
    operation: String(row.operation),
    campaignId: String(row.campaign_id),
    codeId: String(row.code_id),
    customerId: String(row.customer_id),
    redemptionId: row.redemption_id === null ? null : String(row.redemption_id),
    action: row.action as RiskAction,
    outcome: row.outcome as StoredDecision['outcome'],
    decision: parseJsonResult(row.decision),
    label: (row.label ?? null) as RuleLabel | null,
  };
}

/** A decision that stopped an attempt (block, challenge): stored on its own, no redemption. */
export async function insertStoppedDecision(
  db: Kysely<Database>,
  d: {
    id: string;
    now: Date;
    campaignId: string;
    codeId: string;
    customerId: string;
    action: RiskAction;
    outcome: 'blocked' | 'challenged';
    decision: Record<string, unknown>;
  },
): Promise<void> {
  await sql`
    INSERT INTO risk_decisions (id, created_at, operation, campaign_id, code_id, customer_id, action, outcome, decision)
    VALUES (${d.id}, ${d.now}, 'redemption', ${d.campaignId}, ${d.codeId}, ${d.customerId}, ${d.action},
            ${d.outcome}, ${JSON.stringify(d.decision)}::jsonb)`.execute(db);
}

export async function findDecision(db: Kysely<Database>, id: string): Promise<StoredDecision | null> {
  const { rows } = await sql<Row>`
    SELECT d.*, l.label FROM risk_decisions d LEFT JOIN risk_labels l ON l.decision_id = d.id
     WHERE d.id = ${id}`.execute(db);
  return rows[0] ? decisionFromRow(rows[0]) : null;
}

/** Decisions of a period in creation order, a page at a time (`after` = the last id seen). */
export async function decisionsBetween(
  db: Kysely<Database>,
  filter: {
    from: Date;
    to: Date;
    after?: string | undefined;
    limit: number;
    campaignId?: string | undefined;
    action?: RiskAction | undefined;
  },
): Promise<StoredDecision[]> {
  const { rows } = await sql<Row>`
    SELECT d.*, l.label FROM risk_decisions d LEFT JOIN risk_labels l ON l.decision_id = d.id
     WHERE d.created_at >= ${filter.from} AND d.created_at < ${filter.to}
       ${filter.after ? sql`AND d.id > ${filter.after}` : sql``}
       ${filter.campaignId ? sql`AND d.campaign_id = ${filter.campaignId}` : sql``}
       ${filter.action ? sql`AND d.action = ${filter.action}` : sql``}
     ORDER BY d.id
     LIMIT ${filter.limit}`.execute(db);
  return rows.map(decisionFromRow);
}

export async function labelDecision(
  db: Kysely<Database>,
  l: { decisionId: string; label: RuleLabel; note: string | null; actor: string; now: Date },
): Promise<boolean> {
  const { rows } = await sql<Row>`
    INSERT INTO risk_labels AS l (decision_id, label, note, created_by, created_at)
    SELECT id, ${l.label}, ${l.note}, ${l.actor}, ${l.now} FROM risk_decisions WHERE id = ${l.decisionId}
    ON CONFLICT (decision_id) DO UPDATE
      SET label = EXCLUDED.label, note = EXCLUDED.note, created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at
    RETURNING decision_id`.execute(db);
  return rows.length > 0;
}

export type ReviewOutcome =
  | { outcome: 'reviewed' | 'already_reviewed'; redemption: Redemption }
  | { outcome: 'not_found' | 'not_under_review' };

export async function reviewRedemption(
  db: Kysely<Database>,
  p: {
    id: string;
    verdict: 'approve' | 'reject';
    label: RuleLabel;
    note: string | null;
    actor: string;
    eventId: string;
    rollbackEventId: string;
    now: Date;
  },
): Promise<ReviewOutcome> {
  const { rows } = await retryOnConflict(() =>
    sql<{ result: unknown }>`
      SELECT promoguard_review(${p.id}, ${p.verdict}, ${p.label}, ${p.note}, ${p.actor}, ${p.eventId},
                               ${p.rollbackEventId}, ${p.now.toISOString()}::timestamptz) AS result`.execute(
      db,
    ),
  );
  const result = parseJsonResult(rows[0]?.result);
  if (result.outcome === 'not_found' || result.outcome === 'not_under_review')
    return { outcome: result.outcome };
  if (result.outcome === 'reviewed' || result.outcome === 'already_reviewed') {
    return { outcome: result.outcome, redemption: redemptionFromRow(result.redemption as Row) };
  }
  throw new Error(`unexpected review outcome ${String(result.outcome)}`);
}

/** Redemptions waiting for review, oldest first. */
export async function pendingReviews(
  db: Kysely<Database>,
  page: { limit: number; after?: string | undefined; campaignId?: string | undefined },
): Promise<Redemption[]> {
  const { rows } = await sql<Row>`
    SELECT * FROM redemptions
     WHERE review_status = 'pending'
       ${page.after ? sql`AND id > ${page.after}` : sql``}
       ${page.campaignId ? sql`AND campaign_id = ${page.campaignId}` : sql``}
     ORDER BY id
     LIMIT ${page.limit}`.execute(db);
  return rows.map(redemptionFromRow);
}

export async function countPendingReviews(db: Kysely<Database>): Promise<number> {
  const { rows } =
    await sql<Row>`SELECT count(*) AS n FROM redemptions WHERE review_status = 'pending'`.execute(db);
  return toNumber((rows[0] as Row).n);
}
