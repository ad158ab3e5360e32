/** Pending and decided two-person approvals of campaign changes. */
import type { Kysely, Selectable } from 'kysely';
import type { ApprovalRule } from '../domain/approvals.js';
import type { CampaignStatus } from '../domain/campaign.js';
import { parseJsonResult } from './rows.js';
import type { ApprovalKind, ApprovalStatus, ApprovalsTable, Database } from './schema.js';

export type { ApprovalKind, ApprovalStatus } from './schema.js';

export interface ApprovalRecord {
  id: string;
  kind: ApprovalKind;
  targetId: string;
  /** The campaign's version and status when the change was requested. */
  targetVersion: number;
  targetStatus: CampaignStatus;
  /** The requested change as the service stores it (services/campaigns.ts encodes and decodes it). */
  change: Record<string, unknown>;
  rules: ApprovalRule[];
  reason: string | null;
  requestedBy: string;
  status: ApprovalStatus;
  decidedBy: string | null;
  decidedAt: Date | null;
  note: string | null;
  createdAt: Date;
  expiresAt: Date;
}

function fromRow(r: Selectable<ApprovalsTable>): ApprovalRecord {
  return {
    id: r.id,
    kind: r.kind,
    targetId: r.target_id,
    targetVersion: r.target_version,
    targetStatus: r.target_status,
    change: parseJsonResult<Record<string, unknown>>(r.change),
    rules: r.rules as ApprovalRule[],
    reason: r.reason,
    requestedBy: r.requested_by,
    status: r.status,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    note: r.note,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

export async function insertApproval(
  db: Kysely<Database>,
  a: Pick<
    ApprovalRecord,
    | 'id'
    | 'kind'
    | 'targetId'
    | 'targetVersion'
    | 'targetStatus'
    | 'change'
    | 'rules'
    | 'reason'
    | 'requestedBy'
    | 'createdAt'
    | 'expiresAt'
  >,
): Promise<ApprovalRecord> {
  const row = await db
    .insertInto('approvals')
    .values({
      id: a.id,
      kind: a.kind,
      target_id: a.targetId,
      target_version: a.targetVersion,
      target_status: a.targetStatus,
      change: JSON.stringify(a.change),
      rules: a.rules,
      reason: a.reason,
      requested_by: a.requestedBy,
      status: 'pending',
      created_at: a.createdAt,
      expires_at: a.expiresAt,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return fromRow(row);
}

export async function findApproval(
  db: Kysely<Database>,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<ApprovalRecord | null> {
  let query = db.selectFrom('approvals').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? fromRow(row) : null;
}

/** Newest first. */
export async function listApprovals(
  db: Kysely<Database>,
  f: {
    limit: number;
    before?: string | undefined;
    status?: ApprovalStatus | undefined;
    targetId?: string | undefined;
  },
): Promise<ApprovalRecord[]> {
  let query = db.selectFrom('approvals').selectAll().orderBy('id', 'desc').limit(f.limit);
  if (f.before) query = query.where('id', '<', f.before);
  if (f.status) query = query.where('status', '=', f.status);
  if (f.targetId) query = query.where('target_id', '=', f.targetId);
  return (await query.execute()).map(fromRow);
}

/** Conditional on the approval still pending, so of two racing decisions exactly one lands. */
export async function decideApproval(
  db: Kysely<Database>,
  id: string,
  decision: { status: Exclude<ApprovalStatus, 'pending'>; decidedBy: string | null; note: string | null },
  now: Date,
): Promise<ApprovalRecord | null> {
  const row = await db
    .updateTable('approvals')
    .set({ status: decision.status, decided_by: decision.decidedBy, decided_at: now, note: decision.note })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .returningAll()
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

/** Mark every pending approval past its expiry as expired; returns them. */
export async function expireDue(db: Kysely<Database>, now: Date): Promise<ApprovalRecord[]> {
  const rows = await db
    .updateTable('approvals')
    .set({ status: 'expired', decided_at: now, note: 'not decided before it expired' })
    .where('status', '=', 'pending')
    .where('expires_at', '<=', now)
    .returningAll()
    .execute();
  return rows.map(fromRow);
}
