/** The audit trail: who changed what, when and why. Rows are only ever inserted. */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

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
