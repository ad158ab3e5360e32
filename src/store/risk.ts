/** Rules, stored decisions, labels and reviews of the risk engine. */
import { CompiledQuery, type Kysely, type Selectable, sql } from 'kysely';
import type { HoldWith, RiskAction, RuleMode } from '../domain/risk.js';
import { dbFunction } from './functions.js';
import { retryOnConflict } from './retry.js';
import { parseJsonResult, type Redemption, type RedemptionRow, redemptionFromRow } from './rows.js';
import type { Database, DecisionOutcome, RiskDecisionsTable, RiskRulesTable, RuleLabel } from './schema.js';

export type { RuleLabel } from './schema.js';

export interface RiskRule {
  id: string;
  name: string;
  description: string;
  expression: string;
  action: RiskAction;
  reason: string;
  mode: RuleMode;
  holdWith: HoldWith | null;
  campaignId: string | null;
  expiresAt: Date | null;
  enabled: boolean;
  pack: string | null;
  version: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

function ruleFromRow(row: Selectable<RiskRulesTable>): RiskRule {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    expression: row.expression,
    action: row.action,
    reason: row.reason,
    mode: row.mode,
    holdWith: row.hold_with,
    campaignId: row.campaign_id,
    expiresAt: row.expires_at,
    enabled: row.enabled,
    pack: row.pack,
    version: row.version,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
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
  let query = db.insertInto('risk_rules').values({
    id: rule.id,
    name: rule.name,
    description: rule.description,
    expression: rule.expression,
    action: rule.action,
    reason: rule.reason,
    mode: rule.mode,
    hold_with: rule.holdWith,
    campaign_id: rule.campaignId,
    expires_at: rule.expiresAt,
    enabled: rule.enabled,
    pack: rule.pack,
    created_by: rule.createdBy,
    created_at: now,
    updated_at: now,
  });
  if (ifAbsent) query = query.onConflict((oc) => oc.column('id').doNothing());
  const row = await query.returningAll().executeTakeFirst();
  return row ? ruleFromRow(row) : null;
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
    | 'holdWith'
    | 'campaignId'
    | 'expiresAt'
    | 'enabled'
  >
>;

export async function updateRule(
  db: Kysely<Database>,
  id: string,
  patch: RulePatch,
  now: Date,
): Promise<RiskRule | null> {
  const row = await db
    .updateTable('risk_rules')
    .set((eb) => ({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.expression !== undefined ? { expression: patch.expression } : {}),
      ...(patch.action !== undefined ? { action: patch.action } : {}),
      ...(patch.reason !== undefined ? { reason: patch.reason } : {}),
      ...(patch.mode !== undefined ? { mode: patch.mode } : {}),
      ...(patch.holdWith !== undefined ? { hold_with: patch.holdWith } : {}),
      ...(patch.campaignId !== undefined ? { campaign_id: patch.campaignId } : {}),
      ...(patch.expiresAt !== undefined ? { expires_at: patch.expiresAt } : {}),
      ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
      version: eb('version', '+', 1),
      updated_at: now,
    }))
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  return row ? ruleFromRow(row) : null;
}

/** Soft delete: the id stays taken, so a shipped rule an analyst deleted is not re-created. */
export async function deleteRule(db: Kysely<Database>, id: string, now: Date): Promise<boolean> {
  const row = await db
    .updateTable('risk_rules')
    .set((eb) => ({ deleted_at: now, enabled: false, updated_at: now, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function findRule(db: Kysely<Database>, id: string): Promise<RiskRule | null> {
  const row = await db
    .selectFrom('risk_rules')
    .selectAll()
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return row ? ruleFromRow(row) : null;
}

export async function listRules(db: Kysely<Database>): Promise<RiskRule[]> {
  const rows = await db
    .selectFrom('risk_rules')
    .selectAll()
    .where('deleted_at', 'is', null)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
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
  outcome: DecisionOutcome;
  decision: Record<string, unknown>;
  label: RuleLabel | null;
}

function decisionFromRow(row: Selectable<RiskDecisionsTable> & { label: RuleLabel | null }): StoredDecision {
  return {
    id: row.id,
    createdAt: row.created_at,
    operation: row.operation,
    campaignId: row.campaign_id,
    codeId: row.code_id,
    customerId: row.customer_id,
    redemptionId: row.redemption_id,
    action: row.action,
    outcome: row.outcome,
    decision: parseJsonResult<Record<string, unknown>>(row.decision),
    label: row.label,
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
  await db
    .insertInto('risk_decisions')
    .values({
      id: d.id,
      created_at: d.now,
      operation: 'redemption',
      campaign_id: d.campaignId,
      code_id: d.codeId,
      customer_id: d.customerId,
      action: d.action,
      outcome: d.outcome,
      decision: JSON.stringify(d.decision),
    })
    .execute();
}

/** Decisions with their label, if any. */
function decisionsWithLabels(db: Kysely<Database>) {
  return db
    .selectFrom('risk_decisions as d')
    .leftJoin('risk_labels as l', 'l.decision_id', 'd.id')
    .selectAll('d')
    .select('l.label');
}

export async function findDecision(db: Kysely<Database>, id: string): Promise<StoredDecision | null> {
  const row = await decisionsWithLabels(db).where('d.id', '=', id).executeTakeFirst();
  return row ? decisionFromRow(row) : null;
}

/** Several decisions by id, with their labels (a page of the review inbox in one query). */
export async function findDecisions(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<Map<string, StoredDecision>> {
  if (ids.length === 0) return new Map();
  const rows = await decisionsWithLabels(db)
    .where('d.id', 'in', [...ids])
    .execute();
  return new Map(rows.map((row) => [row.id, decisionFromRow(row)]));
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
  let query = decisionsWithLabels(db)
    .where('d.created_at', '>=', filter.from)
    .where('d.created_at', '<', filter.to)
    .orderBy('d.id')
    .limit(filter.limit);
  if (filter.after) query = query.where('d.id', '>', filter.after);
  if (filter.campaignId) query = query.where('d.campaign_id', '=', filter.campaignId);
  if (filter.action) query = query.where('d.action', '=', filter.action);
  return (await query.execute()).map(decisionFromRow);
}

/** How often one rule took part in the decisions of a period, grouped by what it and the decision did. */
export interface RuleHitGroup {
  ruleId: string;
  /** The rule's mode, action and result as recorded on the decision (a rule may change in the period). */
  mode: RuleMode;
  ruleAction: RiskAction;
  result: 'fired' | 'unavailable' | 'error';
  /** The action the decision took (the enforced outcome). */
  decided: RiskAction;
  allowListed: boolean;
  stepUp: boolean;
  count: number;
}

/** The operations whose decisions are stored: redemptions (risk_decisions) and loyalty ones. */
export type StoredOperation = 'redemption' | 'conversion' | 'wallet_read';

/**
 * Every rule outcome recorded on the decisions of [from, to) — redemption attempts and loyalty
 * operations — counted in one pass over each table's rows of the period (the created_at indexes bound
 * the scans; the rule outcomes are unnested from each decision).
 */
export async function ruleHitGroups(
  db: Kysely<Database>,
  period: { from: Date; to: Date },
): Promise<RuleHitGroup[]> {
  const { rows } = await sql<{
    rule_id: string;
    mode: RuleMode;
    rule_action: RiskAction;
    result: RuleHitGroup['result'];
    decided: RiskAction;
    allow_listed: boolean;
    step_up: boolean;
    n: unknown;
  }>`
    WITH d AS (
      SELECT action, decision FROM risk_decisions
      WHERE created_at >= ${period.from} AND created_at < ${period.to}
      UNION ALL
      SELECT action, decision FROM loyalty_decisions
      WHERE created_at >= ${period.from} AND created_at < ${period.to}
    )
    SELECT r.value->>'id' AS rule_id, r.value->>'mode' AS mode, r.value->>'action' AS rule_action,
           r.value->>'result' AS result, d.action AS decided,
           coalesce(d.decision->>'allow_listed' = 'true', false) AS allow_listed,
           coalesce(jsonb_typeof(d.decision->'step_up') = 'string', false) AS step_up,
           count(*) AS n
    FROM d
    CROSS JOIN LATERAL jsonb_array_elements(
      CASE WHEN jsonb_typeof(d.decision->'rules') = 'array' THEN d.decision->'rules' ELSE '[]'::jsonb END
    ) AS r(value)
    GROUP BY 1, 2, 3, 4, 5, 6, 7`.execute(db);
  return rows.map((r) => ({
    ruleId: r.rule_id,
    mode: r.mode,
    ruleAction: r.rule_action,
    result: r.result,
    decided: r.decided,
    allowListed: r.allow_listed,
    stepUp: r.step_up,
    count: Number(r.n),
  }));
}

/** Stored decisions of [from, to): redemption attempts per campaign, loyalty ones per operation. */
export async function decisionCounts(
  db: Kysely<Database>,
  period: { from: Date; to: Date },
): Promise<{ byCampaign: Map<string, number>; conversion: number; wallet_read: number }> {
  const [redemptions, loyalty] = await Promise.all([
    db
      .selectFrom('risk_decisions')
      .select((eb) => ['campaign_id', eb.fn.countAll().as('n')])
      .where('created_at', '>=', period.from)
      .where('created_at', '<', period.to)
      .groupBy('campaign_id')
      .execute(),
    db
      .selectFrom('loyalty_decisions')
      .select((eb) => ['operation', eb.fn.countAll().as('n')])
      .where('created_at', '>=', period.from)
      .where('created_at', '<', period.to)
      .groupBy('operation')
      .execute(),
  ]);
  const of = (op: string) => Number(loyalty.find((r) => r.operation === op)?.n ?? 0);
  return {
    byCampaign: new Map(redemptions.map((r) => [r.campaign_id, Number(r.n)])),
    conversion: of('conversion'),
    wallet_read: of('wallet_read'),
  };
}

/** Stored decisions of [from, to) of the given operations (redemptions of one campaign, if named). */
export async function countDecisions(
  db: Kysely<Database>,
  filter: { from: Date; to: Date; campaignId: string | null; operations: readonly StoredOperation[] },
): Promise<number> {
  let total = 0;
  if (filter.operations.includes('redemption')) {
    let query = db
      .selectFrom('risk_decisions')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('created_at', '>=', filter.from)
      .where('created_at', '<', filter.to);
    if (filter.campaignId) query = query.where('campaign_id', '=', filter.campaignId);
    total += Number((await query.executeTakeFirstOrThrow()).n);
  }
  const loyalty = filter.operations.filter((op) => op !== 'redemption') as ('conversion' | 'wallet_read')[];
  if (loyalty.length > 0 && !filter.campaignId) {
    const row = await db
      .selectFrom('loyalty_decisions')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('created_at', '>=', filter.from)
      .where('created_at', '<', filter.to)
      .where('operation', 'in', loyalty)
      .executeTakeFirstOrThrow();
    total += Number(row.n);
  }
  return total;
}

/**
 * Label a decision (the latest label counts). With `ifUnlabeled`, an existing label is kept: a weaker
 * signal (an order fulfilled) never overrides an analyst's verdict or a chargeback.
 */
export async function labelDecision(
  db: Kysely<Database>,
  l: {
    decisionId: string;
    label: RuleLabel;
    note: string | null;
    actor: string;
    now: Date;
    ifUnlabeled?: boolean;
  },
): Promise<boolean> {
  const row = await db
    .insertInto('risk_labels')
    .columns(['decision_id', 'label', 'note', 'created_by', 'created_at'])
    .expression((eb) =>
      eb
        .selectFrom('risk_decisions')
        .select((s) => [
          'id',
          s.val(l.label).as('label'),
          s.val(l.note).as('note'),
          s.val(l.actor).as('created_by'),
          s.val(l.now).as('created_at'),
        ])
        .where('id', '=', l.decisionId),
    )
    .onConflict((oc) =>
      l.ifUnlabeled
        ? oc.column('decision_id').doNothing()
        : oc.column('decision_id').doUpdateSet((eb) => ({
            label: eb.ref('excluded.label'),
            note: eb.ref('excluded.note'),
            created_by: eb.ref('excluded.created_by'),
            created_at: eb.ref('excluded.created_at'),
          })),
    )
    .returning('decision_id')
    .executeTakeFirst();
  return row !== undefined;
}

export type ReviewOutcome =
  | { outcome: 'reviewed' | 'already_reviewed' | 'locked'; redemption: Redemption }
  | { outcome: 'not_found' | 'not_under_review' };

export const REVIEW = dbFunction('promoguard_review', {
  id: 'text',
  verdict: 'text',
  label: 'text',
  note: 'text?',
  actor: 'text',
  event_id: 'text',
  rollback_event_id: 'text',
  now: 'timestamptz',
});

type ReviewResult =
  | { outcome: 'reviewed' | 'already_reviewed' | 'locked'; redemption: RedemptionRow }
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
  const args = REVIEW.values({
    id: p.id,
    verdict: p.verdict,
    label: p.label,
    note: p.note,
    actor: p.actor,
    event_id: p.eventId,
    rollback_event_id: p.rollbackEventId,
    now: p.now.toISOString(),
  });
  const { rows } = await retryOnConflict(() =>
    db.executeQuery<{ result: unknown }>(CompiledQuery.raw(REVIEW.sql, args)),
  );
  const result = parseJsonResult<ReviewResult>(rows[0]?.result);
  if ('redemption' in result) {
    return { outcome: result.outcome, redemption: redemptionFromRow(result.redemption) };
  }
  return { outcome: result.outcome };
}

export async function countPendingReviews(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('redemptions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('review_status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
