/**
 * Discount spend by campaign, currency and period, summed from the ledger's expense entries (a
 * redemption adds its discount, a rollback's reversal takes it back on the day of the rollback), so
 * the figures are the ledger's own and reconcile with it to the minor unit.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

export type SpendPeriod = 'day' | 'week' | 'month';

export interface SpendRow {
  periodStart: Date;
  campaignId: string;
  campaignName: string | null;
  currency: string;
  spentMinor: number;
  reversedMinor: number;
  netMinor: number;
  redemptions: number;
  reversals: number;
}

export interface SpendQuery {
  from: Date;
  to: Date;
  period: SpendPeriod;
  campaignId?: string | undefined;
  /** Rows answered at most (the caller asks for one more to know there are more). */
  limit: number;
}

const toDate = (v: Date | string) => (v instanceof Date ? v : new Date(v));

export async function spendByPeriod(db: Kysely<Database>, q: SpendQuery): Promise<SpendRow[]> {
  const campaign = q.campaignId === undefined ? sql`` : sql`AND l.campaign_id = ${q.campaignId}`;
  // date_trunc in UTC: periods are the same instants whatever the session's time zone; weeks start on Monday.
  const { rows } = await sql<{
    period_start: Date | string;
    campaign_id: string;
    campaign_name: string | null;
    currency: string;
    spent_minor: string | number;
    reversed_minor: string | number;
    net_minor: string | number;
    redemptions: string | number;
    reversals: string | number;
  }>`
    SELECT date_trunc(${q.period}, l.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
           l.campaign_id, c.name AS campaign_name, l.currency,
           coalesce(sum(l.amount_minor) FILTER (WHERE l.entry_type = 'redemption'), 0) AS spent_minor,
           coalesce(-sum(l.amount_minor) FILTER (WHERE l.entry_type = 'reversal'), 0) AS reversed_minor,
           sum(l.amount_minor) AS net_minor,
           count(*) FILTER (WHERE l.entry_type = 'redemption') AS redemptions,
           count(*) FILTER (WHERE l.entry_type = 'reversal') AS reversals
      FROM ledger_entries l
      LEFT JOIN campaigns c ON c.id = l.campaign_id
     WHERE l.account = 'promo_expense' AND l.created_at >= ${q.from} AND l.created_at < ${q.to} ${campaign}
     GROUP BY 1, l.campaign_id, c.name, l.currency
     ORDER BY 1, l.campaign_id, l.currency
     LIMIT ${q.limit}`.execute(db);
  return rows.map((r) => ({
    periodStart: toDate(r.period_start),
    campaignId: r.campaign_id,
    campaignName: r.campaign_name,
    currency: r.currency,
    spentMinor: Number(r.spent_minor),
    reversedMinor: Number(r.reversed_minor),
    netMinor: Number(r.net_minor),
    redemptions: Number(r.redemptions),
    reversals: Number(r.reversals),
  }));
}
