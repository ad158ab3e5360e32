/** Remediation policies, the remediations they applied, and the codes a revoke took (for its undo). */
import { type Kysely, type Selectable, sql } from 'kysely';
import type { AlertKind, AlertScopeType, AlertSeverity } from '../domain/alerts.js';
import type {
  PolicyScopeType,
  RemediationAction,
  RemediationMode,
  RemediationPolicy,
  TargetType,
} from '../domain/remediation.js';
import { parseJsonResult } from './rows.js';
import type { Database, RemediationPoliciesTable, RemediationsTable } from './schema.js';

function policyFromRow(r: Selectable<RemediationPoliciesTable>): RemediationPolicy {
  return {
    id: r.id,
    name: r.name,
    scope: { type: r.scope_type as PolicyScopeType, campaignId: r.campaign_id, partner: r.partner },
    alertKind: r.alert_kind as AlertKind,
    alertScopes: r.alert_scopes as AlertScopeType[] | null,
    minSeverity: r.min_severity as AlertSeverity | null,
    action: r.action as RemediationAction,
    params: parseJsonResult<Record<string, unknown>>(r.params),
    mode: r.mode as RemediationMode,
    durationSeconds: r.duration_seconds,
    enabled: r.enabled,
    pack: r.pack,
    version: r.version,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function listPolicies(db: Kysely<Database>): Promise<RemediationPolicy[]> {
  const rows = await db
    .selectFrom('remediation_policies')
    .selectAll()
    .where('deleted_at', 'is', null)
    .orderBy('id')
    .execute();
  return rows.map(policyFromRow);
}

export async function findPolicy(
  db: Kysely<Database>,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<RemediationPolicy | null> {
  let q = db
    .selectFrom('remediation_policies')
    .selectAll()
    .where('id', '=', id)
    .where('deleted_at', 'is', null);
  if (options.forUpdate) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  return row ? policyFromRow(row) : null;
}

export interface PolicyRow {
  name: string;
  scope: { type: PolicyScopeType; campaignId: string | null; partner: string | null };
  alertKind: string;
  alertScopes: string[] | null;
  minSeverity: string | null;
  action: string;
  params: Record<string, unknown>;
  mode: string;
  durationSeconds: number;
  enabled: boolean;
}

function policyColumns(p: PolicyRow) {
  return {
    name: p.name,
    scope_type: p.scope.type,
    campaign_id: p.scope.campaignId,
    partner: p.scope.partner,
    alert_kind: p.alertKind,
    alert_scopes: p.alertScopes,
    min_severity: p.minSeverity as 'ticket' | 'page' | null,
    action: p.action,
    params: JSON.stringify(p.params),
    mode: p.mode as RemediationMode,
    duration_seconds: p.durationSeconds,
    enabled: p.enabled,
  };
}

export async function insertPolicy(
  db: Kysely<Database>,
  id: string,
  p: PolicyRow,
  actor: string,
  now: Date,
): Promise<RemediationPolicy> {
  const row = await db
    .insertInto('remediation_policies')
    .values({ id, ...policyColumns(p), pack: null, created_by: actor, created_at: now, updated_at: now })
    .returningAll()
    .executeTakeFirstOrThrow();
  return policyFromRow(row);
}

export async function updatePolicy(
  db: Kysely<Database>,
  id: string,
  p: PolicyRow,
  now: Date,
): Promise<RemediationPolicy> {
  const row = await db
    .updateTable('remediation_policies')
    .set((eb) => ({ ...policyColumns(p), updated_at: now, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return policyFromRow(row);
}

/** Kept (its remediations name it), never matched again. */
export async function deletePolicy(db: Kysely<Database>, id: string, now: Date): Promise<boolean> {
  const r = await db
    .updateTable('remediation_policies')
    .set({ deleted_at: now, enabled: false, updated_at: now })
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export type RemediationStatus = 'active' | 'lifted' | 'expired';

export interface Remediation {
  id: string;
  policyId: string;
  alertId: string;
  alertKind: string;
  action: RemediationAction;
  target: {
    type: TargetType;
    key: string;
    campaignId: string | null;
    partner: string | null;
    batchId: string | null;
    codeId: string | null;
  };
  params: Record<string, unknown>;
  dryRun: boolean;
  status: RemediationStatus;
  change: Record<string, unknown>;
  appliedAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
  endedBy: string | null;
  endReason: string | null;
  undo: Record<string, unknown> | null;
}

function remediationFromRow(r: Selectable<RemediationsTable>): Remediation {
  return {
    id: r.id,
    policyId: r.policy_id,
    alertId: r.alert_id,
    alertKind: r.alert_kind,
    action: r.action as RemediationAction,
    target: {
      type: r.target_type,
      key: r.target_key,
      campaignId: r.campaign_id,
      partner: r.partner,
      batchId: r.batch_id,
      codeId: r.code_id,
    },
    params: parseJsonResult<Record<string, unknown>>(r.params),
    dryRun: r.dry_run,
    status: r.status,
    change: parseJsonResult<Record<string, unknown>>(r.change),
    appliedAt: r.applied_at,
    expiresAt: r.expires_at,
    endedAt: r.ended_at,
    endedBy: r.ended_by,
    endReason: r.end_reason,
    undo: r.undo === null ? null : parseJsonResult<Record<string, unknown>>(r.undo),
  };
}

export interface NewRemediation {
  id: string;
  policyId: string;
  alertId: string;
  alertKind: string;
  action: RemediationAction;
  target: Remediation['target'];
  params: Record<string, unknown>;
  dryRun: boolean;
  change: Record<string, unknown>;
  appliedAt: Date;
  expiresAt: Date;
}

/**
 * Record a remediation; null when this alert already acted under this policy (a redelivery), or when
 * the policy's remediation on this target is still in force. One statement: two nodes handed the same
 * alert cannot both insert, so the one that gets null rolls its change back.
 */
export async function insertRemediation(
  db: Kysely<Database>,
  r: NewRemediation,
): Promise<Remediation | null> {
  const row = await db
    .insertInto('remediations')
    .values({
      id: r.id,
      policy_id: r.policyId,
      alert_id: r.alertId,
      alert_kind: r.alertKind,
      action: r.action,
      target_type: r.target.type,
      target_key: r.target.key,
      campaign_id: r.target.campaignId,
      partner: r.target.partner,
      batch_id: r.target.batchId,
      code_id: r.target.codeId,
      params: JSON.stringify(r.params),
      dry_run: r.dryRun,
      status: 'active',
      change: JSON.stringify(r.change),
      applied_at: r.appliedAt,
      expires_at: r.expiresAt,
    })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
  return row ? remediationFromRow(row) : null;
}

export async function setChange(
  db: Kysely<Database>,
  id: string,
  change: Record<string, unknown>,
): Promise<void> {
  await db
    .updateTable('remediations')
    .set({ change: JSON.stringify(change) })
    .where('id', '=', id)
    .execute();
}

export async function findRemediation(db: Kysely<Database>, id: string): Promise<Remediation | null> {
  const row = await db.selectFrom('remediations').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? remediationFromRow(row) : null;
}

export async function listRemediations(
  db: Kysely<Database>,
  f: {
    status?: RemediationStatus | undefined;
    alertId?: string | undefined;
    limit: number;
    before?: string | undefined;
  },
): Promise<Remediation[]> {
  let q = db.selectFrom('remediations').selectAll().orderBy('id', 'desc').limit(f.limit);
  if (f.status) q = q.where('status', '=', f.status);
  if (f.alertId) q = q.where('alert_id', '=', f.alertId);
  if (f.before) q = q.where('id', '<', f.before);
  return (await q.execute()).map(remediationFromRow);
}

/** The remediations in force that change what requests see (dry runs change nothing). */
export async function listEnforced(db: Kysely<Database>): Promise<Remediation[]> {
  const rows = await db
    .selectFrom('remediations')
    .selectAll()
    .where('status', '=', 'active')
    .where('dry_run', '=', false)
    .orderBy('id')
    .execute();
  return rows.map(remediationFromRow);
}

/**
 * End a remediation: one statement claims it, so of a lift and an expiry (or two nodes' sweeps) exactly
 * one ends it and runs its undo; the others get null.
 */
export async function claimEnd(
  db: Kysely<Database>,
  id: string,
  status: 'lifted' | 'expired',
  by: string,
  reason: string | null,
  now: Date,
): Promise<Remediation | null> {
  const row = await db
    .updateTable('remediations')
    .set({ status, ended_at: now, ended_by: by, end_reason: reason })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .returningAll()
    .executeTakeFirst();
  return row ? remediationFromRow(row) : null;
}

export async function setUndo(
  db: Kysely<Database>,
  id: string,
  undo: Record<string, unknown>,
): Promise<void> {
  await db
    .updateTable('remediations')
    .set({ undo: JSON.stringify(undo) })
    .where('id', '=', id)
    .execute();
}

/** Remediations past their expiry, oldest first. */
export async function dueExpiries(db: Kysely<Database>, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('remediations')
    .select('id')
    .where('status', '=', 'active')
    .where('expires_at', '<=', now)
    .orderBy('expires_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/** The codes a revoke would take: the unredeemed active codes of a partner (in its campaign) or a batch. */
function revocable(target: Remediation['target']) {
  return target.type === 'partner'
    ? sql`campaign_id = ${target.campaignId} AND partner = ${target.partner}`
    : sql`batch_id = ${target.batchId}`;
}

export async function countRevocable(db: Kysely<Database>, target: Remediation['target']): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::integer AS n FROM codes
     WHERE ${revocable(target)} AND status = 'active' AND uses = 0`.execute(db);
  return rows[0]?.n ?? 0;
}

/** Revoke them and keep which, in one statement, so the undo gives back exactly these. */
export async function revokeTracked(
  db: Kysely<Database>,
  remediationId: string,
  target: Remediation['target'],
  now: Date,
): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    WITH revoked AS (
      UPDATE codes SET status = 'revoked', revoked_at = ${now}
       WHERE ${revocable(target)} AND status = 'active' AND uses = 0
      RETURNING id),
    kept AS (
      INSERT INTO remediation_revoked_codes (remediation_id, code_id)
      SELECT ${remediationId}, id FROM revoked RETURNING 1)
    SELECT count(*)::integer AS n FROM kept`.execute(db);
  return rows[0]?.n ?? 0;
}

/** Give back the codes the remediation revoked that are still revoked and unused. */
export async function unrevokeTracked(db: Kysely<Database>, remediationId: string): Promise<number> {
  const result = await sql`
    UPDATE codes SET status = 'active', revoked_at = NULL
     WHERE id IN (SELECT code_id FROM remediation_revoked_codes WHERE remediation_id = ${remediationId})
       AND status = 'revoked' AND uses = 0`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** The campaign a code or a batch belongs to (an alert may leave it out). */
export async function campaignOf(
  db: Kysely<Database>,
  ids: { codeId: string | null; batchId: string | null },
): Promise<string | null> {
  if (ids.codeId) {
    const row = await db
      .selectFrom('codes')
      .select('campaign_id')
      .where('id', '=', ids.codeId)
      .executeTakeFirst();
    if (row) return row.campaign_id;
  }
  if (ids.batchId) {
    const row = await db
      .selectFrom('code_batches')
      .select('campaign_id')
      .where('id', '=', ids.batchId)
      .executeTakeFirst();
    if (row) return row.campaign_id;
  }
  return null;
}

/** The shapes of a batch, or of every batch of a campaign: how a guess is tied to them before any read. */
export async function batchShapes(
  db: Kysely<Database>,
  target: { batchId: string | null; campaignId: string | null },
): Promise<{ prefix: string; randomLength: number }[]> {
  let q = db.selectFrom('code_batches').select(['prefix', 'random_length']);
  q = target.batchId
    ? q.where('id', '=', target.batchId)
    : q.where('campaign_id', '=', target.campaignId ?? '');
  const rows = await q.execute();
  return rows.map((r) => ({ prefix: r.prefix, randomLength: r.random_length }));
}
