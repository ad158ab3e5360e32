/**
 * One campaign over time, bucketed by minute, hour or day: redemptions made, the discount they gave
 * (still in force), rollbacks, redemptions by new accounts (the account age the request sent, kept with
 * the redemption), and redemption attempts the risk engine refused (blocked or challenged).
 * Read through the campaign's redemption index and the decisions' time index; the window is bounded
 * by the caller, so a read never grows with the campaign's whole history.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

export type SeriesBucket = 'minute' | 'hour' | 'day';

export interface SeriesPoint {
  at: Date;
  redemptions: number;
  spentMinor: number;
  rollbacks: number;
  /** Redemptions whose request said the account was younger than `newAccountHours` when it redeemed. */
  newAccounts: number;
  /** Redemptions whose request sent the account's creation time at all. */
  accountAgeKnown: number;
  riskBlocked: number;
  riskChallenged: number;
}

const toDate = (v: Date | string) => (v instanceof Date ? v : new Date(v));

export async function campaignSeries(
  db: Kysely<Database>,
  campaignId: string,
  window: { from: Date; to: Date; bucket: SeriesBucket; newAccountHours: number },
): Promise<SeriesPoint[]> {
  const { from, to, bucket, newAccountHours } = window;
  // date_trunc in UTC: buckets are the same instants whatever the session's time zone.
  const { rows } = await sql<{
    at: Date | string;
    redemptions: string | number;
    spent_minor: string | number;
    rollbacks: string | number;
    new_accounts: string | number;
    account_age_known: string | number;
    risk_blocked: string | number;
    risk_challenged: string | number;
  }>`
    WITH made AS (
      SELECT date_trunc(${bucket}, created_at AT TIME ZONE 'UTC') AS at,
             count(*) AS redemptions,
             coalesce(sum(discount_minor) FILTER (WHERE status = 'redeemed'), 0) AS spent_minor,
             count(*) FILTER (WHERE (context->>'account_created_at')::timestamptz
                                    > created_at - make_interval(hours => ${newAccountHours}::int)) AS new_accounts,
             count(*) FILTER (WHERE context->>'account_created_at' IS NOT NULL) AS account_age_known
        FROM redemptions
       WHERE campaign_id = ${campaignId} AND created_at >= ${from} AND created_at < ${to}
       GROUP BY 1
    ), undone AS (
      SELECT date_trunc(${bucket}, rolled_back_at AT TIME ZONE 'UTC') AS at, count(*) AS rollbacks
        FROM redemptions
       WHERE campaign_id = ${campaignId} AND rolled_back_at >= ${from} AND rolled_back_at < ${to}
       GROUP BY 1
    ), refused AS (
      SELECT date_trunc(${bucket}, created_at AT TIME ZONE 'UTC') AS at,
             count(*) FILTER (WHERE outcome = 'blocked') AS risk_blocked,
             count(*) FILTER (WHERE outcome = 'challenged') AS risk_challenged
        FROM risk_decisions
       WHERE campaign_id = ${campaignId} AND created_at >= ${from} AND created_at < ${to}
         AND outcome <> 'redeemed'
       GROUP BY 1
    ), buckets AS (
      SELECT at FROM made UNION SELECT at FROM undone UNION SELECT at FROM refused
    )
    SELECT b.at AT TIME ZONE 'UTC' AS at,
           coalesce(m.redemptions, 0) AS redemptions,
           coalesce(m.spent_minor, 0) AS spent_minor,
           coalesce(u.rollbacks, 0) AS rollbacks,
           coalesce(m.new_accounts, 0) AS new_accounts,
           coalesce(m.account_age_known, 0) AS account_age_known,
           coalesce(r.risk_blocked, 0) AS risk_blocked,
           coalesce(r.risk_challenged, 0) AS risk_challenged
      FROM buckets b
      LEFT JOIN made m ON m.at = b.at
      LEFT JOIN undone u ON u.at = b.at
      LEFT JOIN refused r ON r.at = b.at
     ORDER BY b.at`.execute(db);
  return rows.map((r) => ({
    at: toDate(r.at),
    redemptions: Number(r.redemptions),
    spentMinor: Number(r.spent_minor),
    rollbacks: Number(r.rollbacks),
    newAccounts: Number(r.new_accounts),
    accountAgeKnown: Number(r.account_age_known),
    riskBlocked: Number(r.risk_blocked),
    riskChallenged: Number(r.risk_challenged),
  }));
}

/** Discount in force from redemptions made before `before`: where the burn-down line starts. */
export async function spentBefore(db: Kysely<Database>, campaignId: string, before: Date): Promise<number> {
  const { rows } = await sql<{ spent: string | number }>`
    SELECT coalesce(sum(discount_minor), 0) AS spent
      FROM redemptions
     WHERE campaign_id = ${campaignId} AND status = 'redeemed' AND created_at < ${before}`.execute(db);
  return Number(rows[0]?.spent ?? 0);
}
