/**
 * The review queue's inbox and assignment. A held redemption is a case; an analyst takes one and
 * holds it until `review_locked_until`, after which it is free again (a closed browser never strands
 * a case). Taking is one conditional UPDATE, so two analysts can never hold the same case.
 */
import { type Kysely, sql } from 'kysely';
import { type Redemption, type RedemptionRow, redemptionFromRow } from './rows.js';
import type { Database, ReviewStatus } from './schema.js';

export interface ReviewFilter {
  limit: number;
  /** The last id of the page before. */
  after?: string | undefined;
  status: ReviewStatus;
  campaignId?: string | undefined;
  customerId?: string | undefined;
  /** Every account the person holds now (identity links), not only the one that redeemed. */
  personId?: string | undefined;
  /** A rule that fired on the case's decision (enforced or shadow). */
  ruleId?: string | undefined;
  /** `me`: held by `actor` now; `unassigned`: held by nobody (or the lock ran out). */
  assigned?: 'me' | 'unassigned' | undefined;
  actor: string;
  /** Held at or before this instant (older than an age). */
  heldBefore?: Date | undefined;
  now: Date;
}

/**
 * Pending cases oldest first (the order they wait in), decided ones newest first (what was just done);
 * ids are time-ordered. A page at a time.
 */
export async function listReviews(db: Kysely<Database>, f: ReviewFilter): Promise<Redemption[]> {
  const oldestFirst = f.status === 'pending';
  let query = db
    .selectFrom('redemptions as r')
    .selectAll('r')
    .where('r.review_status', '=', f.status)
    .orderBy('r.id', oldestFirst ? 'asc' : 'desc')
    .limit(f.limit);
  if (f.after) query = query.where('r.id', oldestFirst ? '>' : '<', f.after);
  if (f.campaignId) query = query.where('r.campaign_id', '=', f.campaignId);
  if (f.customerId) query = query.where('r.customer_id', '=', f.customerId);
  if (f.personId) {
    const personId = f.personId;
    query = query.where('r.customer_id', 'in', (eb) =>
      eb
        .selectFrom('identity_nodes')
        .select(sql<string>`substr(key, 10)`.as('customer_id'))
        .where('person_id', '=', personId)
        .where('key', 'like', 'customer:%'),
    );
  }
  if (f.ruleId) {
    const fired = JSON.stringify([{ id: f.ruleId }]);
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('risk_decisions as d')
          .select('d.id')
          .whereRef('d.id', '=', 'r.decision_id')
          .where(sql<boolean>`d.decision -> 'rules' @> ${fired}::jsonb`),
      ),
    );
  }
  if (f.assigned === 'me') {
    query = query.where('r.review_assigned_to', '=', f.actor).where('r.review_locked_until', '>', f.now);
  } else if (f.assigned === 'unassigned') {
    query = query.where((eb) =>
      eb.or([eb('r.review_assigned_to', 'is', null), eb('r.review_locked_until', '<=', f.now)]),
    );
  }
  if (f.heldBefore) query = query.where('r.created_at', '<=', f.heldBefore);
  return (await query.execute()).map(redemptionFromRow);
}

export async function findReviewCase(db: Kysely<Database>, id: string): Promise<Redemption | null> {
  const row = await db.selectFrom('redemptions').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? redemptionFromRow(row) : null;
}

/**
 * The oldest pending case nobody holds (or whose lock ran out), now held by `actor` until `until`.
 * One statement: the row is picked and locked with SKIP LOCKED, so analysts asking at the same time
 * each get a different case instead of queueing on the same row; the outer WHERE re-checks the guard.
 */
export async function takeOldestReview(
  db: Kysely<Database>,
  p: { actor: string; now: Date; until: Date },
): Promise<Redemption | null> {
  const { rows } = await sql<RedemptionRow>`
    UPDATE redemptions
       SET review_assigned_to = ${p.actor}, review_assigned_at = ${p.now}, review_locked_until = ${p.until}
     WHERE id = (SELECT id FROM redemptions
                  WHERE review_status = 'pending'
                    AND (review_assigned_to IS NULL OR review_locked_until <= ${p.now})
                  ORDER BY created_at, id
                  LIMIT 1
                  FOR UPDATE SKIP LOCKED)
       AND review_status = 'pending'
       AND (review_assigned_to IS NULL OR review_locked_until <= ${p.now})
    RETURNING *`.execute(db);
  const row = rows[0];
  return row ? redemptionFromRow(row) : null;
}

/** The oldest pending case `actor` holds now, its lock extended to `until`; null when none. */
export async function extendOwnReview(
  db: Kysely<Database>,
  p: { actor: string; now: Date; until: Date },
): Promise<Redemption | null> {
  const { rows } = await sql<RedemptionRow>`
    UPDATE redemptions
       SET review_locked_until = ${p.until}
     WHERE id = (SELECT id FROM redemptions
                  WHERE review_status = 'pending'
                    AND review_assigned_to = ${p.actor} AND review_locked_until > ${p.now}
                  ORDER BY created_at, id
                  LIMIT 1)
       AND review_status = 'pending' AND review_assigned_to = ${p.actor} AND review_locked_until > ${p.now}
    RETURNING *`.execute(db);
  const row = rows[0];
  return row ? redemptionFromRow(row) : null;
}

/**
 * Take one named case: it must be pending and free, expired, or already `actor`'s (then the lock is
 * extended and `fresh` is false). Null when the guard did not hold; the caller reads the case to say why.
 */
export async function takeReview(
  db: Kysely<Database>,
  p: { id: string; actor: string; now: Date; until: Date },
): Promise<{ redemption: Redemption; fresh: boolean } | null> {
  // SET reads the row as it was: a case the actor already held keeps its assigned_at.
  const { rows } = await sql<RedemptionRow>`
    UPDATE redemptions
       SET review_assigned_to = ${p.actor},
           review_assigned_at = CASE WHEN review_assigned_to = ${p.actor} AND review_locked_until > ${p.now}
                                     THEN review_assigned_at ELSE ${p.now} END,
           review_locked_until = ${p.until}
     WHERE id = ${p.id} AND review_status = 'pending'
       AND (review_assigned_to IS NULL OR review_assigned_to = ${p.actor} OR review_locked_until <= ${p.now})
    RETURNING *`.execute(db);
  const row = rows[0];
  if (!row) return null;
  const redemption = redemptionFromRow(row);
  return { redemption, fresh: redemption.reviewAssignedAt?.getTime() === p.now.getTime() };
}

/** Give a held case back to the queue; only its holder can, while the lock lasts. */
export async function releaseReview(
  db: Kysely<Database>,
  p: { id: string; actor: string; now: Date },
): Promise<Redemption | null> {
  const { rows } = await sql<RedemptionRow>`
    UPDATE redemptions
       SET review_assigned_to = NULL, review_assigned_at = NULL, review_locked_until = NULL
     WHERE id = ${p.id} AND review_status = 'pending'
       AND review_assigned_to = ${p.actor} AND review_locked_until > ${p.now}
    RETURNING *`.execute(db);
  const row = rows[0];
  return row ? redemptionFromRow(row) : null;
}

export interface DecisionSummary {
  id: string;
  createdAt: Date;
  operation: string;
  campaignId: string;
  redemptionId: string | null;
  action: string;
  outcome: string;
  because: string[];
  label: string | null;
}

/** A customer's recent redemptions and decisions (also the attempts stopped), newest first. */
export async function customerHistory(
  db: Kysely<Database>,
  customerId: string,
  limit: number,
): Promise<{ redemptions: Redemption[]; decisions: DecisionSummary[] }> {
  const [redemptions, decisions] = await Promise.all([
    db
      .selectFrom('redemptions')
      .selectAll()
      .where('customer_id', '=', customerId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute(),
    // A redemption's decision through the customer's redemptions, a stopped attempt's by its own
    // (partial) index: no index on every decision by customer is paid for on the write path.
    sql<{
      id: string;
      created_at: Date;
      operation: string;
      campaign_id: string;
      redemption_id: string | null;
      action: string;
      outcome: string;
      label: string | null;
      because: unknown;
    }>`
      SELECT d.id, d.created_at, d.operation, d.campaign_id, d.redemption_id, d.action, d.outcome,
             l.label, d.decision -> 'because' AS because
        FROM ((SELECT d.* FROM risk_decisions d
                WHERE d.customer_id = ${customerId} AND d.redemption_id IS NULL
                ORDER BY d.id DESC LIMIT ${limit})
              UNION ALL
              (SELECT d.* FROM redemptions r JOIN risk_decisions d ON d.id = r.decision_id
                WHERE r.customer_id = ${customerId}
                ORDER BY r.id DESC LIMIT ${limit})) d
        LEFT JOIN risk_labels l ON l.decision_id = d.id
       ORDER BY d.id DESC
       LIMIT ${limit}`
      .execute(db)
      .then((r) => r.rows),
  ]);
  return {
    redemptions: redemptions.map(redemptionFromRow),
    decisions: decisions.map((d) => {
      const because = typeof d.because === 'string' ? JSON.parse(d.because) : d.because;
      return {
        id: d.id,
        createdAt: d.created_at,
        operation: d.operation,
        campaignId: d.campaign_id,
        redemptionId: d.redemption_id,
        action: d.action,
        outcome: d.outcome,
        because: Array.isArray(because) ? (because as string[]) : [],
        label: d.label,
      };
    }),
  };
}

/**
 * Hold the redemptions of a campaign (of one code only, with `codeId`) made at or after `sinceId` by
 * accounts younger than a day when they redeemed, that are neither reviewed nor rolled back (the one
 * that tripped the hold is pending already). One UPDATE: a redemption another hold or an analyst got to first is left
 * as it is, so a repeat holds nothing twice. The campaign index bounds the scan by the id's time.
 */
export async function holdRelated(
  db: Kysely<Database>,
  p: { campaignId: string; codeId: string | null; sinceId: string },
): Promise<RedemptionRow[]> {
  const { rows } = await sql<RedemptionRow>`
    UPDATE redemptions
       SET review_status = 'pending'
     WHERE campaign_id = ${p.campaignId}
       AND id >= ${p.sinceId}
       AND (${p.codeId}::text IS NULL OR code_id = ${p.codeId})
       AND status = 'redeemed' AND review_status IS NULL
       AND (context->>'account_created_at')::timestamptz > created_at - interval '24 hours'
    RETURNING *`.execute(db);
  return rows;
}
