import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { CodePattern } from '../domain/codes.js';
import { CodeShapeConflictError } from './errors.js';
import { lockUntilCommit } from './locks.js';
import {
  type CampaignRecord,
  type CodeRecord,
  campaignFromRow,
  codeFromRow,
  parseJsonResult,
  type Redemption,
  type Row,
  redemptionFromRow,
  toNumber,
} from './rows.js';
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
  return row ? codeFromRow(row as unknown as Row) : null;
}

export interface RedemptionContext {
  code: CodeRecord;
  campaign: CampaignRecord;
  customerUses: number;
  /** Uses held by the person(s) the customer and this request's identifiers belong to. */
  personUses: number;
  /** The code's partner has used up its cap (validation sees what the redemption would refuse). */
  partnerCapReached: boolean;
  /** The campaign's per-minute throttle is used up for this minute. */
  throttled: boolean;
  /** What the risk features read from the database (see FEATURES in domain/risk.ts). */
  risk: RiskFacts;
}

export interface RiskFacts {
  /** Customer accounts of the person(s) this request belongs to, this customer included. */
  linkedAccounts: number;
  /** The customer's redemptions in force, any campaign, counted up to 1,000. */
  customerRedemptions: number;
  /** Mean subtotal of the customer's last 20 redemptions in the cart's currency; null without any. */
  meanSubtotalMinor: number | null;
}

/** What a validation or redemption reads before deciding (see loadRedemptionContext). */
export interface ContextQuery {
  normalized: string;
  customerId: string;
  /** Given for a redemption: the redemption this key already made is returned instead. */
  idempotencyKey: string | null;
  identityKeys: string[];
  currency: string;
  now: Date;
}

export interface LoadedContext {
  context: RedemptionContext | null;
  existing: Redemption | null;
}

/**
 * Everything a validation or redemption decides on, in one round trip: the code, its campaign, the
 * customer's and person's use counts in the campaign, the facts the risk features read, and — when an
 * idempotency key is given — the redemption that key already produced (a repeat must return it even
 * if the code is used up by now).
 */
export async function loadRedemptionContext(db: Kysely<Database>, q: ContextQuery): Promise<LoadedContext> {
  const result = await sql<{ result: unknown }>`
    SELECT promoguard_context(${q.normalized}, ${q.customerId}, ${q.idempotencyKey}, ${q.identityKeys}::text[],
                              ${q.currency}, ${q.now.toISOString()}::timestamptz) AS result`.execute(db);
  return contextFromResult(result.rows[0]?.result);
}

function contextFromResult(result: unknown): LoadedContext {
  const row = result != null ? parseJsonResult(result) : null;
  if (!row) return { context: null, existing: null };
  const existing = row.existing ? redemptionFromRow(row.existing as Row) : null;
  if (!row.code || !row.campaign) return { context: null, existing };
  return {
    context: {
      code: codeFromRow(row.code as Row),
      campaign: campaignFromRow(row.campaign as Row),
      customerUses: toNumber(row.customer_uses),
      personUses: toNumber(row.person_uses),
      partnerCapReached: row.partner_full === true,
      throttled: row.throttled === true,
      risk: {
        linkedAccounts: toNumber(row.linked_accounts),
        customerRedemptions: toNumber(row.customer_redemptions),
        meanSubtotalMinor: row.mean_subtotal == null ? null : Number(row.mean_subtotal),
      },
    },
    existing,
  };
}

/** The context reads of several requests in one statement; the rows come back with their index. */
const CONTEXT_BATCH_SQL = `
  SELECT x.i, promoguard_context(x.normalized, x.customer_id, x.idempotency_key,
                                 ARRAY(SELECT jsonb_array_elements_text(x.identity_keys)), x.currency, x.now) AS result
    FROM jsonb_to_recordset($1::jsonb) AS x(i integer, normalized text, customer_id text, idempotency_key text,
                                            identity_keys jsonb, currency text, now timestamptz)`;

interface QueuedRead {
  query: ContextQuery;
  resolve: (loaded: LoadedContext) => void;
  reject: (err: unknown) => void;
}

/**
 * Context reads gathered per event-loop turn: the requests that reach their read in the same turn share
 * one statement (read-only and STABLE, so nothing is held or ordered between them). Under load a
 * statement then carries several requests' reads, and the database and this process pay its round trip
 * once — on PostgreSQL a round trip is a socket write and a backend wake-up, on PGlite a statement is
 * ~0.7 ms of fixed cost. A read alone in its turn goes as the single-read statement. No read waits
 * beyond the turn it was asked in.
 */
export class ContextReader {
  private queue: QueuedRead[] = [];
  /** Statements sent and reads they carried (a batch of n counts one statement, n reads). */
  readonly stats = { statements: 0, reads: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 64,
  ) {}

  read(query: ContextQuery): Promise<LoadedContext> {
    return new Promise((resolve, reject) => {
      this.queue.push({ query, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    while (this.queue.length > 0) void this.send(this.queue.splice(0, this.maxBatch));
  }

  private async send(batch: QueuedRead[]): Promise<void> {
    this.stats.statements++;
    this.stats.reads += batch.length;
    if (batch.length === 1) return this.alone(batch);
    let results: Map<number, unknown>;
    try {
      const items = batch.map(({ query: q }, i) => ({
        i,
        normalized: q.normalized,
        customer_id: q.customerId,
        idempotency_key: q.idempotencyKey,
        identity_keys: q.identityKeys,
        currency: q.currency,
        now: q.now.toISOString(),
      }));
      const { rows } = await this.db.executeQuery<{ i: number; result: unknown }>(
        CompiledQuery.raw(CONTEXT_BATCH_SQL, [JSON.stringify(items)]),
      );
      results = new Map(rows.map((r) => [Number(r.i), r.result]));
    } catch {
      // One read must not fail the others (a value the JSON form cannot carry, say): each goes again alone,
      // and fails alone if it fails again.
      this.stats.statements += batch.length;
      await this.alone(batch);
      return;
    }
    batch.forEach((read, i) => {
      try {
        read.resolve(contextFromResult(results.get(i)));
      } catch (err) {
        read.reject(err);
      }
    });
  }

  /** Each read as its own statement. */
  private async alone(reads: QueuedRead[]): Promise<void> {
    await Promise.all(
      reads.map((read) => loadRedemptionContext(this.db, read.query).then(read.resolve, read.reject)),
    );
  }
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
  return rows.map((r) => codeFromRow(r as unknown as Row));
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
  return row ? codeFromRow(row as unknown as Row) : null;
}

export async function listPatterns(db: Kysely<Database>): Promise<CodePattern[]> {
  const rows = await db.selectFrom('code_batches').select(['prefix', 'random_length']).distinct().execute();
  return rows.map((r) => ({ prefix: r.prefix, randomLength: toNumber(r.random_length) }));
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
