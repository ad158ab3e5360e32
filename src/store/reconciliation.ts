/**
 * Reconciliation: the counters, ledgers and outbox checked against the rows they summarise, in set
 * operations (one statement per batch of campaigns or customers), and the reports that keep every
 * mismatch found.
 *
 * Each check statement reads one snapshot (a single statement always does), so redemptions committed
 * while a run is in progress never show up as false mismatches: a redemption, its counters, its ledger
 * entries and its event commit together. The mismatches a statement finds are inserted as items by the
 * same statement and only their tallies come back, so no mismatch travels through JavaScript row by row.
 *
 * The truth is the rows of record: a redemption in force (status 'redeemed') and the append-only
 * ledgers; counters (spent_minor, uses, used, balance) are what is compared against them. Each item's
 * `difference` is `actual - expected`: positive when the counter or ledger shows more than the rows
 * justify.
 */
import { type ColumnType, type Generated, type Kysely, type RawBuilder, type Selectable, sql } from 'kysely';
import { lockUntilCommit } from './locks.js';
import type { Database } from './schema.js';

/** Every kind of mismatch, with the unit its expected/actual/difference are counted in. */
export const MISMATCH_KINDS = {
  /** campaigns.spent_minor vs the discounts of its redemptions in force. */
  campaign_spent: 'minor',
  /** The campaign's promo_expense ledger sum vs the discounts of its redemptions in force. */
  ledger_expense: 'minor',
  /** promo_expense + campaign_budget of a campaign, which must be zero. */
  ledger_balance: 'minor',
  /** One redemption's entries on one account vs its discount (in force) or zero (rolled back). */
  redemption_ledger: 'minor',
  /** Ledger rows of a campaign in a currency other than the campaign's. */
  ledger_currency: 'count',
  /** campaigns.redemptions_used vs its redemptions in force. */
  campaign_redemptions: 'count',
  /** codes.uses vs the code's redemptions in force. */
  code_uses: 'count',
  /** customer_usage.uses vs the customer's redemptions in force in the campaign. */
  customer_usage: 'count',
  /** person_usage.uses vs the redemptions in force of the customers the person holds now. */
  person_usage: 'count',
  /** partner_caps.used vs the redemptions in force of the partner's codes. */
  partner_usage: 'count',
  /** points_accounts.balance vs the sum of the customer's movements. */
  points_balance: 'points',
  /** A movement's balance_after vs the balance before it plus its points. */
  points_movement: 'points',
  /** points_daily vs the points converted by the customer on that UTC day. */
  points_daily: 'points',
  /** A committed change without its outbox event. */
  missing_event: 'count',
  /** An outbox event still unpublished past the grace period. */
  undelivered_event: 'count',
} as const;

export type MismatchKind = keyof typeof MISMATCH_KINDS;
export type MismatchUnit = (typeof MISMATCH_KINDS)[MismatchKind];
export const KIND_NAMES = Object.keys(MISMATCH_KINDS) as MismatchKind[];

export type ReconciliationStatus = 'running' | 'ok' | 'mismatch' | 'failed';
/** 'error': the run failed (the server log has the detail); 'abandoned': its node stopped renewing it; 'interrupted': its node shut down. */
export type ReconciliationFailure = 'error' | 'abandoned' | 'interrupted';

export interface KindSummary {
  unit: MismatchUnit;
  /** Mismatched rows found. */
  rows: number;
  /** Of those, kept as items (at most the per-kind limit of a run). */
  itemised: number;
  /** Sum of |difference| over the rows, in the unit (for money: over every currency; see by_currency). */
  difference: number;
  /** For money: the sum of |difference| per currency, in its minor units. */
  by_currency?: Record<string, number>;
}

export interface ReconciliationSummary {
  checked: { campaigns: number; points_accounts: number; outbox_grace_seconds: number };
  mismatched_rows: number;
  kinds: Record<MismatchKind, KindSummary>;
}

export interface Reconciliation {
  id: string;
  status: ReconciliationStatus;
  triggeredBy: string;
  startedAt: Date;
  finishedAt: Date | null;
  summary: ReconciliationSummary | null;
  failure: ReconciliationFailure | null;
}

export interface MismatchItem {
  /** Position in the report; the cursor of item pages. */
  seq: number;
  kind: MismatchKind;
  campaignId: string | null;
  /** The ids naming the mismatched thing, e.g. `{campaign_id, code_id}`. */
  entity: Record<string, string>;
  /** For money; null for rows, counts and points. */
  currency: string | null;
  unit: MismatchUnit;
  expected: number;
  actual: number;
  difference: number;
}

/** One kind's (and, for money, one currency's) share of a check statement's mismatches. */
export interface Tally {
  kind: MismatchKind;
  currency: string | null;
  unit: MismatchUnit;
  rows: number;
  itemised: number;
  difference: number;
}

// Table types of migration 0006, kept with the module that owns the tables (type aliases: Kysely's
// withTables needs them indexable).
type ReconciliationsTable = {
  id: string;
  status: ReconciliationStatus;
  triggered_by: string;
  started_at: Date;
  heartbeat_at: Date;
  finished_at: Date | null;
  summary: ColumnType<ReconciliationSummary | null, string | null, string | null>;
  failure: ReconciliationFailure | null;
};

type ReconciliationItemsTable = {
  id: Generated<number>;
  reconciliation_id: string;
  kind: MismatchKind;
  campaign_id: string | null;
  entity: ColumnType<Record<string, string>, string, never>;
  currency: string | null;
  unit: MismatchUnit;
  expected: number;
  actual: number;
  difference: number;
};

export type ReconciliationTables = {
  reconciliations: ReconciliationsTable;
  reconciliation_items: ReconciliationItemsTable;
};

const tables = (db: Kysely<Database>) => db.withTables<ReconciliationTables>();

function fromRow(r: Selectable<ReconciliationsTable>): Reconciliation {
  return {
    id: r.id,
    status: r.status,
    triggeredBy: r.triggered_by,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    summary: r.summary,
    failure: r.failure,
  };
}

// ---------------------------------------------------------------------------------------------------
// Runs: start (one at a time), heartbeat, finish
// ---------------------------------------------------------------------------------------------------

export type StartOutcome =
  | { outcome: 'started'; reconciliation: Reconciliation }
  | { outcome: 'running'; id: string }
  | { outcome: 'not_due' };

/**
 * Start a run unless one is running. A running report whose heartbeat is older than `staleBefore` was
 * left by a node that died: it is closed as 'abandoned' first. With `dueIfNoneSince`, start only when
 * no run (of any trigger, failed ones too) started after that instant: the schedule of every node
 * asks, and the lock makes the answer and the insert one decision, so nodes ticking together start one
 * run between them. The unique index on running reports holds the same even without the lock.
 */
export async function startReconciliation(
  db: Kysely<Database>,
  p: { id: string; triggeredBy: string; now: Date; staleBefore: Date; dueIfNoneSince: Date | null },
): Promise<StartOutcome> {
  return db.transaction().execute(async (trx) => {
    await lockUntilCommit(trx, 'reconciliationStart');
    const t = tables(trx);
    await t
      .updateTable('reconciliations')
      .set({ status: 'failed', failure: 'abandoned', finished_at: p.now })
      .where('status', '=', 'running')
      .where('heartbeat_at', '<', p.staleBefore)
      .execute();
    const running = await t
      .selectFrom('reconciliations')
      .select('id')
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (running) return { outcome: 'running', id: running.id };
    if (p.dueIfNoneSince !== null) {
      const recent = await t
        .selectFrom('reconciliations')
        .select('id')
        .where('started_at', '>', p.dueIfNoneSince)
        .limit(1)
        .executeTakeFirst();
      if (recent) return { outcome: 'not_due' };
    }
    const row = await t
      .insertInto('reconciliations')
      .values({
        id: p.id,
        status: 'running',
        triggered_by: p.triggeredBy,
        started_at: p.now,
        heartbeat_at: p.now,
        summary: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { outcome: 'started', reconciliation: fromRow(row) };
  });
}

/** Renew a running report's heartbeat; false when it is no longer running (closed as abandoned). */
export async function renewReconciliation(db: Kysely<Database>, id: string, now: Date): Promise<boolean> {
  const result = await tables(db)
    .updateTable('reconciliations')
    .set({ heartbeat_at: now })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Close a running report for good; null when it was no longer running. */
export async function finishReconciliation(
  db: Kysely<Database>,
  id: string,
  end:
    | { status: 'ok' | 'mismatch'; summary: ReconciliationSummary }
    | { status: 'failed'; summary: ReconciliationSummary | null; failure: ReconciliationFailure },
  now: Date,
): Promise<Reconciliation | null> {
  const row = await tables(db)
    .updateTable('reconciliations')
    .set({
      status: end.status,
      finished_at: now,
      heartbeat_at: now,
      summary: end.summary === null ? null : JSON.stringify(end.summary),
      failure: end.status === 'failed' ? end.failure : null,
    })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .returningAll()
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

// ---------------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------------

export async function countCampaigns(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('campaigns')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function countPointsAccounts(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('points_accounts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The next campaigns after `after`, in id order: at most `maxCampaigns`, and no more than
 * `maxRedemptions` redemptions in force between them (a larger campaign makes a batch of its own).
 * Its counter sizes the batch: a check statement then reads a bounded share of the tables, either a
 * large one in a few sequential passes or a small one through the indexes.
 */
export async function campaignBatch(
  db: Kysely<Database>,
  after: string | null,
  maxCampaigns: number,
  maxRedemptions: number,
): Promise<string[]> {
  let query = db.selectFrom('campaigns').select(['id', 'redemptions_used']).orderBy('id').limit(maxCampaigns);
  if (after !== null) query = query.where('id', '>', after);
  const ids: string[] = [];
  let redemptions = 0;
  for (const row of await query.execute()) {
    if (ids.length > 0 && redemptions + row.redemptions_used > maxRedemptions) break;
    ids.push(row.id);
    redemptions += row.redemptions_used;
  }
  return ids;
}

/**
 * The customer id that closes a points batch of `size` accounts after `after`, or null when fewer
 * remain (the last batch is then open-ended, so movements of a customer without an account are
 * checked too).
 */
export async function pointsBatchEnd(
  db: Kysely<Database>,
  after: string | null,
  size: number,
): Promise<string | null> {
  let query = db
    .selectFrom('points_accounts')
    .select('customer_id')
    .orderBy('customer_id')
    .offset(size - 1)
    .limit(1);
  if (after !== null) query = query.where('customer_id', '>', after);
  return (await query.executeTakeFirst())?.customer_id ?? null;
}

// ---------------------------------------------------------------------------------------------------
// Checks. Each builds `WITH …, m (kind, campaign_id, entity, currency, unit, expected, actual) AS (…)`
// listing the mismatches; `collect` inserts them as items and returns their tallies.
// ---------------------------------------------------------------------------------------------------

interface TallyRow {
  kind: MismatchKind;
  currency: string | null;
  unit: MismatchUnit;
  rows: number;
  itemised: number;
  difference: number;
}

/**
 * Insert the mismatches `check` lists as items of the running report (at most `remaining[kind]` more
 * of each kind, so a database broken everywhere cannot flood the report) and count them all.
 */
async function collect(
  db: Kysely<Database>,
  reconciliationId: string,
  remaining: Record<MismatchKind, number>,
  check: RawBuilder<unknown>,
): Promise<Tally[]> {
  const { rows } = await sql<TallyRow>`${check},
    ranked AS (
      SELECT m.*, row_number() OVER (PARTITION BY m.kind ORDER BY m.campaign_id, m.entity::text) AS rn FROM m),
    ins AS (
      INSERT INTO reconciliation_items
        (reconciliation_id, kind, campaign_id, entity, currency, unit, expected, actual, difference)
      SELECT ${reconciliationId}, kind, campaign_id, entity, currency, unit, expected, actual, actual - expected
        FROM ranked
       WHERE rn <= COALESCE((${JSON.stringify(remaining)}::jsonb ->> kind)::bigint, 0)
       ORDER BY kind, rn
      RETURNING kind, currency)
    SELECT m.kind, m.currency, m.unit, count(*) AS rows, sum(abs(m.actual - m.expected)) AS difference,
           (SELECT count(*) FROM ins WHERE ins.kind = m.kind AND ins.currency IS NOT DISTINCT FROM m.currency)
             AS itemised
      FROM m
     GROUP BY m.kind, m.currency, m.unit`.execute(db);
  return rows.map((r) => ({
    ...r,
    rows: Number(r.rows),
    itemised: Number(r.itemised),
    difference: Number(r.difference),
  }));
}

/**
 * Campaign checks over a batch of campaigns, in one statement: the redemptions, codes and ledger
 * entries of the batch are each read once (materialised) and every check reads those.
 *
 * The person of a redemption is the person its customer's node ('customer:<id>') belongs to now:
 * persons merge (redeem.sql sums the merged persons' usage into the surviving one) and a rollback
 * gives the use back to the customer's current person (rollback.sql), so a redemption's stored
 * person_id may name a person that no longer exists. Redemptions without a person (made before
 * persons were counted) are outside person_usage, as rollback.sql leaves them.
 */
function campaignChecks(campaignIds: string[]): RawBuilder<unknown> {
  return sql`WITH
    c AS MATERIALIZED (
      SELECT id, currency, spent_minor, redemptions_used FROM campaigns WHERE id = ANY (${campaignIds}::text[])),
    r AS MATERIALIZED (
      SELECT id, campaign_id, code_id, customer_id, person_id, discount_minor, status = 'redeemed' AS live
        FROM redemptions WHERE campaign_id IN (SELECT id FROM c)),
    k AS MATERIALIZED (SELECT id, campaign_id, uses, partner FROM codes WHERE campaign_id IN (SELECT id FROM c)),
    le AS MATERIALIZED (
      SELECT l.campaign_id, l.redemption_id, l.account, l.amount_minor, l.currency = c.currency AS home
        FROM ledger_entries l JOIN c ON c.id = l.campaign_id),
    totals AS (
      SELECT c.id, c.currency, c.spent_minor, c.redemptions_used,
             COALESCE(rs.n, 0) AS live_count, COALESCE(rs.discount, 0) AS live_discount,
             COALESCE(ls.expense, 0) AS expense, COALESCE(ls.balance, 0) AS balance,
             COALESCE(ls.foreign_rows, 0) AS foreign_rows
        FROM c
        LEFT JOIN (SELECT campaign_id, count(*) AS n, sum(discount_minor) AS discount
                     FROM r WHERE live GROUP BY campaign_id) rs ON rs.campaign_id = c.id
        LEFT JOIN (SELECT campaign_id,
                          sum(amount_minor) FILTER (WHERE home AND account = 'promo_expense') AS expense,
                          sum(amount_minor) FILTER (WHERE home) AS balance,
                          count(*) FILTER (WHERE NOT home) AS foreign_rows
                     FROM le GROUP BY campaign_id) ls ON ls.campaign_id = c.id),
    by_redemption AS (
      SELECT COALESCE(x.campaign_id, y.campaign_id) AS campaign_id,
             COALESCE(x.redemption_id, y.redemption_id) AS redemption_id,
             COALESCE(x.account, y.account) AS account,
             COALESCE(x.expected, 0) AS expected, COALESCE(y.amount, 0) AS actual
        FROM (SELECT r.campaign_id, r.id AS redemption_id, a.account,
                     CASE WHEN r.live THEN r.discount_minor * a.sign ELSE 0 END AS expected
                FROM r CROSS JOIN (VALUES ('promo_expense', 1), ('campaign_budget', -1)) AS a (account, sign)) x
        FULL JOIN (SELECT campaign_id, redemption_id, account, sum(amount_minor) AS amount
                     FROM le WHERE home GROUP BY campaign_id, redemption_id, account) y
          ON y.campaign_id = x.campaign_id AND y.redemption_id = x.redemption_id AND y.account = x.account
       WHERE COALESCE(x.expected, 0) <> COALESCE(y.amount, 0)),
    m (kind, campaign_id, entity, currency, unit, expected, actual) AS (
      SELECT 'campaign_spent', id, jsonb_build_object('campaign_id', id), currency, 'minor',
             live_discount::bigint, spent_minor::bigint
        FROM totals WHERE spent_minor <> live_discount
      UNION ALL
      SELECT 'ledger_expense', id, jsonb_build_object('campaign_id', id, 'account', 'promo_expense'), currency,
             'minor', live_discount::bigint, expense::bigint
        FROM totals WHERE expense <> live_discount
      UNION ALL
      SELECT 'ledger_balance', id, jsonb_build_object('campaign_id', id), currency, 'minor', 0, balance::bigint
        FROM totals WHERE balance <> 0
      UNION ALL
      SELECT 'ledger_currency', id, jsonb_build_object('campaign_id', id), NULL, 'count', 0, foreign_rows::bigint
        FROM totals WHERE foreign_rows <> 0
      UNION ALL
      SELECT 'redemption_ledger', b.campaign_id,
             jsonb_build_object('campaign_id', b.campaign_id, 'redemption_id', b.redemption_id, 'account', b.account),
             c.currency, 'minor', b.expected::bigint, b.actual::bigint
        FROM by_redemption b JOIN c ON c.id = b.campaign_id
      UNION ALL
      SELECT 'campaign_redemptions', id, jsonb_build_object('campaign_id', id), NULL, 'count',
             live_count::bigint, redemptions_used::bigint
        FROM totals WHERE redemptions_used <> live_count
      UNION ALL
      SELECT 'code_uses', k.campaign_id, jsonb_build_object('campaign_id', k.campaign_id, 'code_id', k.id),
             NULL, 'count', COALESCE(u.n, 0)::bigint, k.uses::bigint
        FROM k LEFT JOIN (SELECT code_id, count(*) AS n FROM r WHERE live GROUP BY code_id) u ON u.code_id = k.id
       WHERE k.uses <> COALESCE(u.n, 0)
      UNION ALL
      SELECT 'customer_usage', COALESCE(u.campaign_id, x.campaign_id),
             jsonb_build_object('campaign_id', COALESCE(u.campaign_id, x.campaign_id),
                                'customer_id', COALESCE(u.customer_id, x.customer_id)),
             NULL, 'count', COALESCE(x.n, 0)::bigint, COALESCE(u.uses, 0)::bigint
        FROM (SELECT campaign_id, customer_id, uses FROM customer_usage WHERE campaign_id IN (SELECT id FROM c)) u
        FULL JOIN (SELECT campaign_id, customer_id, count(*) AS n FROM r WHERE live
                    GROUP BY campaign_id, customer_id) x
          ON x.campaign_id = u.campaign_id AND x.customer_id = u.customer_id
       WHERE COALESCE(u.uses, 0) <> COALESCE(x.n, 0)
      UNION ALL
      SELECT 'person_usage', COALESCE(u.campaign_id, x.campaign_id),
             jsonb_build_object('campaign_id', COALESCE(u.campaign_id, x.campaign_id),
                                'person_id', COALESCE(u.person_id, x.person_id)),
             NULL, 'count', COALESCE(x.n, 0)::bigint, COALESCE(u.uses, 0)::bigint
        FROM (SELECT campaign_id, person_id, uses FROM person_usage WHERE campaign_id IN (SELECT id FROM c)) u
        FULL JOIN (SELECT r.campaign_id, COALESCE(n.person_id, r.person_id) AS person_id, count(*) AS n
                     FROM r LEFT JOIN identity_nodes n ON n.key = 'customer:' || r.customer_id
                    WHERE r.live AND r.person_id IS NOT NULL
                    GROUP BY 1, 2) x
          ON x.campaign_id = u.campaign_id AND x.person_id = u.person_id
       WHERE COALESCE(u.uses, 0) <> COALESCE(x.n, 0)
      UNION ALL
      SELECT 'partner_usage', COALESCE(u.campaign_id, x.campaign_id),
             jsonb_build_object('campaign_id', COALESCE(u.campaign_id, x.campaign_id),
                                'partner', COALESCE(u.partner, x.partner)),
             NULL, 'count', COALESCE(x.n, 0)::bigint, COALESCE(u.used, 0)::bigint
        FROM (SELECT campaign_id, partner, used FROM partner_caps WHERE campaign_id IN (SELECT id FROM c)) u
        FULL JOIN (SELECT r.campaign_id, k.partner, count(*) AS n
                     FROM r JOIN k ON k.id = r.code_id
                    WHERE r.live AND k.partner IS NOT NULL
                    GROUP BY 1, 2) x
          ON x.campaign_id = u.campaign_id AND x.partner = u.partner
       WHERE COALESCE(u.used, 0) <> COALESCE(x.n, 0))`;
}

/**
 * Points checks over the customers in (after, upTo] (either end open when null), in one statement.
 * Movements follow each other in id order per customer: each is written while its account row is
 * locked, so no two movements of one customer can take their ids out of balance order.
 */
function pointsChecks(after: string | null, upTo: string | null): RawBuilder<unknown> {
  const within = () =>
    sql`${after === null ? sql`true` : sql`customer_id > ${after}`} AND ${upTo === null ? sql`true` : sql`customer_id <= ${upTo}`}`;
  return sql`WITH
    a AS MATERIALIZED (SELECT customer_id, balance FROM points_accounts WHERE ${within()}),
    mv AS MATERIALIZED (
      SELECT id, customer_id, points, balance_after,
             lag(balance_after) OVER (PARTITION BY customer_id ORDER BY id) AS before
        FROM points_movements WHERE ${within()}),
    m (kind, campaign_id, entity, currency, unit, expected, actual) AS (
      SELECT 'points_balance', NULL::text, jsonb_build_object('customer_id', COALESCE(a.customer_id, s.customer_id)),
             NULL::text, 'points', COALESCE(s.total, 0)::bigint, COALESCE(a.balance, 0)::bigint
        FROM a FULL JOIN (SELECT customer_id, sum(points) AS total FROM mv GROUP BY customer_id) s
          ON s.customer_id = a.customer_id
       WHERE COALESCE(a.balance, 0) <> COALESCE(s.total, 0)
      UNION ALL
      SELECT 'points_movement', NULL, jsonb_build_object('customer_id', customer_id, 'movement_id', id::text),
             NULL, 'points', (COALESCE(before, 0) + points)::bigint, balance_after::bigint
        FROM mv WHERE balance_after <> COALESCE(before, 0) + points
      UNION ALL
      SELECT 'points_daily', NULL,
             jsonb_build_object('customer_id', COALESCE(d.customer_id, x.customer_id),
                                'utc_day', COALESCE(d.utc_day, x.utc_day)::text),
             NULL, 'points', COALESCE(x.points, 0)::bigint, COALESCE(d.points, 0)::bigint
        FROM (SELECT customer_id, utc_day, points FROM points_daily WHERE ${within()}) d
        FULL JOIN (SELECT customer_id, utc_day, sum(points) AS points FROM conversions WHERE ${within()}
                    GROUP BY customer_id, utc_day) x
          ON x.customer_id = d.customer_id AND x.utc_day = d.utc_day
       WHERE COALESCE(d.points, 0) <> COALESCE(x.points, 0))`;
}

/**
 * Every committed change has its event, as the database functions write them: a redemption its
 * redemption.created and, once rolled back, its redemption.rolled_back (aggregate: the redemption); a
 * decided review its review.approved or review.rejected (aggregate: the redemption); a conversion its
 * points.converted and an expiry refund its points.refunded (aggregate: the customer, payload
 * conversion.id); a credit or debit its points.credited or points.debited (aggregate: the customer,
 * payload movement.id). One pass over the outbox (no index on aggregate ids: that would cost every
 * redemption a write), then hash anti-joins.
 */
function eventChecks(): RawBuilder<unknown> {
  return sql`WITH
    ev AS MATERIALIZED (
      SELECT type, aggregate_id,
             CASE WHEN type IN ('points.converted', 'points.refunded') THEN payload -> 'conversion' ->> 'id'
                  WHEN type IN ('points.credited', 'points.debited') THEN payload -> 'movement' ->> 'id' END AS ref
        FROM outbox
       WHERE type IN ('redemption.created', 'redemption.rolled_back', 'review.approved', 'review.rejected',
                      'points.credited', 'points.debited', 'points.converted', 'points.refunded')),
    m (kind, campaign_id, entity, currency, unit, expected, actual) AS (
      SELECT 'missing_event', r.campaign_id,
             jsonb_build_object('event_type', 'redemption.created', 'redemption_id', r.id), NULL::text, 'count',
             1::bigint, 0::bigint
        FROM redemptions r
       WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.type = 'redemption.created' AND ev.aggregate_id = r.id)
      UNION ALL
      SELECT 'missing_event', r.campaign_id,
             jsonb_build_object('event_type', 'redemption.rolled_back', 'redemption_id', r.id), NULL, 'count', 1, 0
        FROM redemptions r
       WHERE r.status = 'rolled_back'
         AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.type = 'redemption.rolled_back' AND ev.aggregate_id = r.id)
      UNION ALL
      SELECT 'missing_event', r.campaign_id,
             jsonb_build_object('event_type', 'review.' || r.review_status, 'redemption_id', r.id), NULL, 'count', 1, 0
        FROM redemptions r
       WHERE r.review_status IN ('approved', 'rejected')
         AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.type = 'review.' || r.review_status AND ev.aggregate_id = r.id)
      UNION ALL
      SELECT 'missing_event', NULL,
             jsonb_build_object('event_type', 'points.converted', 'customer_id', c.customer_id, 'conversion_id', c.id),
             NULL, 'count', 1, 0
        FROM conversions c
       WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.type = 'points.converted'
                            AND ev.aggregate_id = c.customer_id AND ev.ref = c.id)
      UNION ALL
      SELECT 'missing_event', NULL,
             jsonb_build_object('event_type', 'points.refunded', 'customer_id', c.customer_id, 'conversion_id', c.id),
             NULL, 'count', 1, 0
        FROM conversions c
       WHERE c.refunded_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.type = 'points.refunded'
                            AND ev.aggregate_id = c.customer_id AND ev.ref = c.id)
      UNION ALL
      SELECT 'missing_event', NULL,
             jsonb_build_object('event_type', CASE p.kind WHEN 'credit' THEN 'points.credited' ELSE 'points.debited' END,
                                'customer_id', p.customer_id, 'movement_id', p.id::text),
             NULL, 'count', 1, 0
        FROM points_movements p
       WHERE p.kind IN ('credit', 'debit')
         AND NOT EXISTS (SELECT 1 FROM ev
                          WHERE ev.type = CASE p.kind WHEN 'credit' THEN 'points.credited' ELSE 'points.debited' END
                            AND ev.aggregate_id = p.customer_id AND ev.ref = p.id::text))`;
}

/** Ledger entries of no campaign: no campaign batch sees them, yet they are money on the books. */
function orphanLedgerChecks(): RawBuilder<unknown> {
  return sql`WITH
    m (kind, campaign_id, entity, currency, unit, expected, actual) AS (
      SELECT 'redemption_ledger', l.campaign_id,
             jsonb_build_object('campaign_id', l.campaign_id, 'redemption_id', l.redemption_id, 'account', l.account),
             l.currency, 'minor', 0::bigint, sum(l.amount_minor)::bigint
        FROM ledger_entries l
       WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = l.campaign_id)
       GROUP BY l.campaign_id, l.redemption_id, l.account, l.currency
      HAVING sum(l.amount_minor) <> 0)`;
}

/** Events created before `cutoff` and still unpublished: the relay is stuck, or a consumer is down. */
function undeliveredChecks(cutoff: Date): RawBuilder<unknown> {
  return sql`WITH
    m (kind, campaign_id, entity, currency, unit, expected, actual) AS (
      SELECT 'undelivered_event', NULL::text,
             jsonb_build_object('event_id', id, 'event_type', type, 'aggregate_id', aggregate_id,
                                'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
             NULL::text, 'count', 1::bigint, 0::bigint
        FROM outbox WHERE published_at IS NULL AND created_at < ${cutoff})`;
}

export type Check =
  | { kind: 'campaigns'; campaignIds: string[] }
  | { kind: 'points'; after: string | null; upTo: string | null }
  | { kind: 'events' }
  | { kind: 'orphan_ledger' }
  | { kind: 'undelivered'; cutoff: Date };

/** Run one check, adding its mismatches to the running report `reconciliationId`. */
export function runCheck(
  db: Kysely<Database>,
  reconciliationId: string,
  remaining: Record<MismatchKind, number>,
  check: Check,
): Promise<Tally[]> {
  const statement =
    check.kind === 'campaigns'
      ? campaignChecks(check.campaignIds)
      : check.kind === 'points'
        ? pointsChecks(check.after, check.upTo)
        : check.kind === 'events'
          ? eventChecks()
          : check.kind === 'orphan_ledger'
            ? orphanLedgerChecks()
            : undeliveredChecks(check.cutoff);
  return collect(db, reconciliationId, remaining, statement);
}

// ---------------------------------------------------------------------------------------------------
// Reading reports
// ---------------------------------------------------------------------------------------------------

export async function findReconciliation(db: Kysely<Database>, id: string): Promise<Reconciliation | null> {
  const row = await tables(db)
    .selectFrom('reconciliations')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

/** Newest first; `before` is the id of the last report of the previous page. */
export async function listReconciliations(
  db: Kysely<Database>,
  p: { limit: number; before?: string | undefined },
): Promise<Reconciliation[]> {
  let query = tables(db).selectFrom('reconciliations').selectAll().orderBy('id', 'desc').limit(p.limit);
  if (p.before !== undefined) query = query.where('id', '<', p.before);
  return (await query.execute()).map(fromRow);
}

/** The order entity ids read best in (jsonb keeps keys by length): the event, then outer to inner. */
const ENTITY_ORDER = [
  'event_type',
  'event_id',
  'campaign_id',
  'code_id',
  'redemption_id',
  'account',
  'partner',
  'person_id',
  'customer_id',
  'conversion_id',
  'movement_id',
  'utc_day',
  'aggregate_id',
  'created_at',
];

function inReadingOrder(entity: Record<string, string>): Record<string, string> {
  const rank = (key: string) => {
    const i = ENTITY_ORDER.indexOf(key);
    return i === -1 ? ENTITY_ORDER.length : i;
  };
  return Object.fromEntries(
    Object.entries(entity).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)),
  );
}

/** A report's items in order; `after` is the seq of the last item of the previous page. */
export async function listMismatches(
  db: Kysely<Database>,
  reconciliationId: string,
  p: { limit: number; after?: number | undefined; kind?: MismatchKind | undefined },
): Promise<MismatchItem[]> {
  let query = tables(db)
    .selectFrom('reconciliation_items')
    .selectAll()
    .where('reconciliation_id', '=', reconciliationId)
    .orderBy('id')
    .limit(p.limit);
  if (p.after !== undefined) query = query.where('id', '>', p.after);
  if (p.kind !== undefined) query = query.where('kind', '=', p.kind);
  return (await query.execute()).map((r) => ({
    seq: r.id,
    kind: r.kind,
    campaignId: r.campaign_id,
    entity: inReadingOrder(r.entity),
    currency: r.currency,
    unit: r.unit,
    expected: r.expected,
    actual: r.actual,
    difference: r.difference,
  }));
}

/** Every item of a report, a page at a time (the CSV export streams these). */
export async function* iterateMismatches(
  db: Kysely<Database>,
  reconciliationId: string,
  pageSize = 1_000,
): AsyncGenerator<MismatchItem[]> {
  let after: number | undefined;
  for (;;) {
    const items = await listMismatches(db, reconciliationId, { limit: pageSize, after });
    if (items.length === 0) return;
    yield items;
    after = items[items.length - 1]?.seq;
    if (items.length < pageSize) return;
  }
}

// ---------------------------------------------------------------------------------------------------
// Metrics (M10)
// ---------------------------------------------------------------------------------------------------

export interface LastReconciliation {
  id: string;
  status: 'ok' | 'mismatch';
  finishedAt: Date;
  /** Every kind, zero when clean, so a gauge per kind falls back to 0 once a mismatch is fixed. */
  kinds: Record<
    MismatchKind,
    { rows: number; minorUnits: number; minorUnitsByCurrency: Record<string, number> }
  >;
}

/**
 * For the M10 gauges (src/metrics/catalogue.ts): the last finished reconciliation (ok or mismatch; a
 * failed run measured nothing) with, per kind, its mismatched rows and, for money kinds, the sum of
 * |difference| in minor units (over every currency; `minorUnitsByCurrency` keeps them apart; 0 for
 * kinds counted in rows or points). Null before the first run. Feed
 *   promoguard_reconciliation_mismatch_rows{kind}          <- kinds[kind].rows
 *   promoguard_reconciliation_mismatch_minor{kind}         <- kinds[kind].minorUnits
 *   promoguard_reconciliation_last_run_timestamp_seconds   <- finishedAt (0 when null)
 * Runs never overlap, so the newest finished one by id is the last to finish: one short read of the
 * primary key, cheap enough for every scrape or a short cache.
 */
export async function lastFinishedReconciliation(db: Kysely<Database>): Promise<LastReconciliation | null> {
  const row = await tables(db)
    .selectFrom('reconciliations')
    .selectAll()
    .where('status', 'in', ['ok', 'mismatch'])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!row || row.finished_at === null || row.summary === null) return null;
  const summary = row.summary;
  const kinds = Object.fromEntries(
    KIND_NAMES.map((kind) => {
      const k = summary.kinds[kind];
      const money = MISMATCH_KINDS[kind] === 'minor';
      return [
        kind,
        {
          rows: k?.rows ?? 0,
          minorUnits: money ? (k?.difference ?? 0) : 0,
          minorUnitsByCurrency: money ? { ...(k?.by_currency ?? {}) } : {},
        },
      ];
    }),
  ) as LastReconciliation['kinds'];
  return { id: row.id, status: row.status as 'ok' | 'mismatch', finishedAt: row.finished_at, kinds };
}
