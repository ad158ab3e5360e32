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

/** What every code of one generated batch shares; each code brings only its id, text and normal form. */
export interface GeneratedCodes {
  campaignId: string;
  batchId: string;
  maxUses: number;
  customerId: string | null;
  partner: string | null;
  ids: string[];
  codes: string[];
  normalized: string[];
}

/**
 * Insert a chunk of generated codes in one statement. Each column travels as one space-separated text
 * (ids, generated codes and their display forms hold no space), split by the server: no per-row JSON
 * or array quoting on either side. A code whose text already exists is skipped by the unique index;
 * the caller learns how many went in and draws the rest again.
 */
export async function insertGeneratedCodes(
  db: Kysely<Database>,
  batch: GeneratedCodes,
  now: Date,
): Promise<number> {
  if (batch.ids.length === 0) return 0;
  const result = await sql`
    INSERT INTO codes (id, campaign_id, batch_id, code, normalized, kind, max_uses, customer_id, partner, created_at)
    SELECT g.id, ${batch.campaignId}, ${batch.batchId}, g.code, g.normalized, 'unique', ${batch.maxUses}::integer,
           ${batch.customerId}::text, ${batch.partner}::text, ${now}::timestamptz
      FROM unnest(string_to_array(${batch.ids.join(' ')}::text, ' '),
                  string_to_array(${batch.codes.join(' ')}::text, ' '),
                  string_to_array(${batch.normalized.join(' ')}::text, ' ')) AS g(id, code, normalized)
    ON CONFLICT (normalized) DO NOTHING`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/** The columns of a code export, in order; each line of exportCodesPage has exactly these. */
export const CODE_EXPORT_COLUMNS = [
  'code',
  'customer_id',
  'max_uses',
  'partner',
  'uses',
  'status',
  'created_at',
] as const;

/** A text field as CSV (RFC 4180): quoted, with quotes doubled, only when it holds a comma, quote or line break. */
const csvField = (column: string) =>
  sql.raw(
    `CASE WHEN strpos(${column}, ',') > 0 OR strpos(${column}, '"') > 0 OR strpos(${column}, E'\n') > 0 ` +
      `OR strpos(${column}, E'\r') > 0 THEN '"' || replace(${column}, '"', '""') || '"' ` +
      `ELSE coalesce(${column}, '') END`,
  );

/**
 * One page of a campaign's codes, in id order after `after`, as CSV lines built by the database: a
 * page is one row holding one text, so an export of millions creates no object per code. The caller
 * pages by `last` (keyset), so each page is an index range scan and memory stays one page.
 */
export async function exportCodesPage(
  db: Kysely<Database>,
  campaignId: string,
  page: { limit: number; after?: string | undefined },
): Promise<{ text: string; count: number; last: string | null }> {
  const result = await sql<{ text: string | null; count: number; last: string | null }>`
    SELECT string_agg(line, '' ORDER BY id) AS text, count(*)::integer AS count, max(id) AS last
      FROM (SELECT id,
                   ${csvField('code')} || ',' || ${csvField('customer_id')} || ',' ||
                   coalesce(max_uses::text, '') || ',' || ${csvField('partner')} || ',' || uses::text || ',' ||
                   status || ',' ||
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || E'\n' AS line
              FROM codes
             WHERE campaign_id = ${campaignId} AND id > ${page.after ?? ''}
             ORDER BY id
             LIMIT ${page.limit}) page`.execute(db);
  const row = result.rows[0];
  return { text: row?.text ?? '', count: row?.count ?? 0, last: row?.last ?? null };
}

export async function countCodes(db: Kysely<Database>, campaignId: string): Promise<number> {
  const row = await db
    .selectFrom('codes')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
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
