import { type Kysely, sql } from 'kysely';
import type { CodePattern } from '../domain/codes.js';
import { CodeShapeConflictError } from './errors.js';
import { lockUntilCommit } from './locks.js';
import { type CodeRecord, codeFromRow } from './rows.js';
import type { Database } from './schema.js';

export interface NewCodeRow {
  id: string;
  campaign_id: string;
  batch_id: string | null;
  code: string;
  normalized: string;
  kind: 'public' | 'unique';
  max_uses: number | null;
  customer_id: string | null;
  amount_minor: number | null;
  partner: string | null;
  /** Imports keep a revoked code revoked (an export re-imported must not revive a leaked code). */
  status: 'active' | 'revoked';
}

/**
 * Insert many codes in one statement. Rows travel as one JSON parameter (the same on PGlite and
 * PostgreSQL, and free of the 65,535-parameter limit). Codes whose text already exists are skipped
 * by the unique index, never overwritten; the caller learns which were inserted.
 */
export async function insertCodes(db: Kysely<Database>, rows: NewCodeRow[], now: Date): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const result = await sql<{ normalized: string }>`
    INSERT INTO codes (id, campaign_id, batch_id, code, normalized, kind, max_uses, customer_id, amount_minor,
                       partner, status, revoked_at, created_at)
    SELECT id, campaign_id, batch_id, code, normalized, kind, max_uses, customer_id, amount_minor, partner, status,
           CASE WHEN status = 'revoked' THEN ${now}::timestamptz END, ${now}::timestamptz
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
        id text, campaign_id text, batch_id text, code text, normalized text, kind text,
        max_uses integer, customer_id text, amount_minor bigint, partner text, status text)
    ON CONFLICT (normalized) DO NOTHING
    RETURNING normalized`
    .execute(db)
    .catch((err: unknown) => {
      // The shape guard (sql/triggers): a chosen code that would pass for a generated one.
      if ((err as { code?: string }).code === 'PGSHP') {
        const detail = (err as { detail?: string }).detail;
        throw new CodeShapeConflictError(detail ? [detail] : []);
      }
      throw err;
    });
  return new Set(result.rows.map((r) => r.normalized));
}

/**
 * Take the lock that orders new batches against codes inserted outside a batch (exclusive here,
 * shared in the shape-guard trigger). Held until the caller's transaction ends.
 */
export async function lockCodeShapes(trx: Kysely<Database>): Promise<void> {
  await lockUntilCommit(trx, 'codeShapes');
}

export async function findCode(db: Kysely<Database>, normalized: string): Promise<CodeRecord | null> {
  const row = await db
    .selectFrom('codes')
    .selectAll()
    .where('normalized', '=', normalized)
    .executeTakeFirst();
  return row ? codeFromRow(row) : null;
}

export async function listCodes(
  db: Kysely<Database>,
  campaignId: string,
  page: { limit: number; after?: string | undefined },
): Promise<CodeRecord[]> {
  let query = db
    .selectFrom('codes')
    .selectAll()
    .where('campaign_id', '=', campaignId)
    .orderBy('id', 'asc')
    .limit(page.limit);
  if (page.after) query = query.where('id', '>', page.after);
  const rows = await query.execute();
  return rows.map(codeFromRow);
}

/** Conditional on the code being active, so a revoke is recorded (and its event emitted) once. */
export async function revokeCode(
  db: Kysely<Database>,
  normalized: string,
  now: Date,
): Promise<CodeRecord | null> {
  const row = await db
    .updateTable('codes')
    .set({ status: 'revoked', revoked_at: now })
    .where('normalized', '=', normalized)
    .where('status', '=', 'active')
    .returningAll()
    .executeTakeFirst();
  return row ? codeFromRow(row) : null;
}

export async function insertBatch(
  db: Kysely<Database>,
  batch: { id: string; campaignId: string; pattern: CodePattern; requested: number },
  now: Date,
): Promise<void> {
  await db
    .insertInto('code_batches')
    .values({
      id: batch.id,
      campaign_id: batch.campaignId,
      prefix: batch.pattern.prefix,
      random_length: batch.pattern.randomLength,
      requested: batch.requested,
      created_at: now,
    })
    .execute();
}

export async function listPatterns(db: Kysely<Database>): Promise<CodePattern[]> {
  const rows = await db.selectFrom('code_batches').select(['prefix', 'random_length']).distinct().execute();
  return rows.map((r) => ({ prefix: r.prefix, randomLength: r.random_length }));
}

/** Codes not from a batch that have a batch's shape (prefix and length). */
export async function codesWithShape(
  db: Kysely<Database>,
  pattern: CodePattern,
  limit = 100,
): Promise<string[]> {
  const rows = await sql<{ normalized: string }>`
    SELECT normalized FROM codes
     WHERE batch_id IS NULL AND starts_with(normalized, ${pattern.prefix})
       AND length(normalized) = ${pattern.prefix.length + pattern.randomLength + 1}
       AND substr(normalized, ${pattern.prefix.length + 1}) ~ '^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]+$'
     LIMIT ${limit}`.execute(db);
  return rows.rows.map((r) => r.normalized);
}
