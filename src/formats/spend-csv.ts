/** Spend by campaign and period as CSV for finance: one row per period, campaign and currency, money in minor units. */
import { stringify } from 'csv-stringify/sync';
import type { SpendRow } from '../store/spend.js';
import { safeText } from './reconciliation.js';

export const SPEND_COLUMNS = [
  'period_start',
  'campaign_id',
  'campaign_name',
  'currency',
  'spent_minor',
  'reversed_minor',
  'net_minor',
  'redemptions',
  'reversals',
] as const;

export function spendCsv(rows: SpendRow[]): string {
  return stringify([
    [...SPEND_COLUMNS],
    ...rows.map((r) => [
      r.periodStart.toISOString(),
      r.campaignId,
      // Campaign names are typed by people: a leading = + - @ must not run as a spreadsheet formula.
      safeText(r.campaignName ?? ''),
      r.currency,
      r.spentMinor,
      r.reversedMinor,
      r.netMinor,
      r.redemptions,
      r.reversals,
    ]),
  ]);
}
