/**
 * The audit trail: who changed what, when and why. Rows are only ever inserted, in the transaction of
 * the change they record; a trigger (sql/triggers/audit-log-immutable.sql) refuses every update,
 * delete and truncate.
 */
import type { Kysely } from 'kysely';
import { parseJsonResult } from './rows.js';
import type { Database } from './schema.js';

export interface AuditEntry {
  id: number;
  /** An API key id, `cli`, or `promoguard` for what the service does by itself. */
  actor: string;
  /** `<resource>.<verb>`, e.g. `campaign.updated`, `api_key.revoked`. */
  action: string;
  targetId: string;
  reason: string | null;
  /** The change itself: what was created, the fields changed (`changes: {field: {from, to}}`), … */
  details: Record<string, unknown>;
  createdAt: Date;
}

export async function insertAudit(
  db: Kysely<Database>,
  entry: { actor: string; action: string; targetId: string; reason: string | null; details?: unknown },
  now: Date,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      actor: entry.actor,
      action: entry.action,
      target_id: entry.targetId,
      reason: entry.reason,
      details: JSON.stringify(entry.details ?? {}),
      created_at: now,
    })
    .execute();
}

export interface AuditFilter {
  limit: number;
  /** Entries older than this id (the cursor of the page before). */
  before?: number | undefined;
  actor?: string | undefined;
  targetId?: string | undefined;
  /** Actions starting with this text (`campaign.` finds every campaign change). */
  actionPrefix?: string | undefined;
  /** [from, to): UTC instants. */
  from?: Date | undefined;
  to?: Date | undefined;
}

/** LIKE treats `%`, `_` and `\` specially; a prefix is matched as the text it is. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Newest first (by id: the order the entries were written). */
export async function listAudit(db: Kysely<Database>, f: AuditFilter): Promise<AuditEntry[]> {
  let query = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(f.limit);
  if (f.before !== undefined) query = query.where('id', '<', f.before);
  if (f.actor !== undefined) query = query.where('actor', '=', f.actor);
  if (f.targetId !== undefined) query = query.where('target_id', '=', f.targetId);
  if (f.actionPrefix !== undefined) query = query.where('action', 'like', likePrefix(f.actionPrefix));
  if (f.from !== undefined) query = query.where('created_at', '>=', f.from);
  if (f.to !== undefined) query = query.where('created_at', '<', f.to);
  const rows = await query.execute();
  return rows.map((r) => ({
    id: r.id,
    actor: r.actor,
    action: r.action,
    targetId: r.target_id,
    reason: r.reason,
    details: parseJsonResult<Record<string, unknown> | null>(r.details) ?? {},
    createdAt: r.created_at,
  }));
}
