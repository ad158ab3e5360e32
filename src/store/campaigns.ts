import type { Kysely } from 'kysely';
import type { CampaignStatus, Eligibility, PlannedPeak } from '../domain/campaign.js';
import type { DiscountRule } from '../domain/money.js';
import { type CampaignRecord, campaignFromRow, eligibilityToJson, plannedPeaksToJson } from './rows.js';
import type { Database } from './schema.js';

export interface CampaignFields {
  name: string;
  currency: string;
  discount: DiscountRule;
  startsAt: Date;
  endsAt: Date | null;
  redemptionCap: number | null;
  budgetMinor: number | null;
  perCustomerCap: number | null;
  perPersonCap: number | null;
  throttlePerMinute: number | null;
  minOrderMinor: number | null;
  eligibility: Eligibility;
  metadata: Record<string, string>;
  plannedPeaks: PlannedPeak[];
}

function discountColumns(d: DiscountRule) {
  return {
    discount_type: d.type,
    amount_minor: d.type === 'fixed_amount' ? d.amountMinor : null,
    percent_bp: d.type === 'percentage' ? d.basisPoints : null,
    max_discount_minor: d.type === 'percentage' ? d.maxDiscountMinor : null,
  };
}

function columns(f: CampaignFields) {
  return {
    name: f.name,
    currency: f.currency,
    ...discountColumns(f.discount),
    starts_at: f.startsAt,
    ends_at: f.endsAt,
    redemption_cap: f.redemptionCap,
    budget_minor: f.budgetMinor,
    per_customer_cap: f.perCustomerCap,
    per_person_cap: f.perPersonCap,
    throttle_per_minute: f.throttlePerMinute,
    min_order_minor: f.minOrderMinor,
    eligibility: eligibilityToJson(f.eligibility),
    metadata: JSON.stringify(f.metadata),
    planned_peaks: plannedPeaksToJson(f.plannedPeaks),
  };
}

export async function insertCampaign(
  db: Kysely<Database>,
  id: string,
  status: CampaignStatus,
  fields: CampaignFields,
  now: Date,
): Promise<CampaignRecord> {
  const row = await db
    .insertInto('campaigns')
    .values({ id, status, ...columns(fields), created_at: now, updated_at: now })
    .returningAll()
    .executeTakeFirstOrThrow();
  return campaignFromRow(row);
}

export async function findCampaign(
  db: Kysely<Database>,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<CampaignRecord | null> {
  let query = db.selectFrom('campaigns').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? campaignFromRow(row) : null;
}

export async function listCampaigns(
  db: Kysely<Database>,
  page: { limit: number; before?: string | undefined; status?: CampaignStatus | undefined },
): Promise<CampaignRecord[]> {
  let query = db.selectFrom('campaigns').selectAll().orderBy('id', 'desc').limit(page.limit);
  if (page.before) query = query.where('id', '<', page.before);
  if (page.status) query = query.where('status', '=', page.status);
  const rows = await query.execute();
  return rows.map(campaignFromRow);
}

/**
 * Replace the configuration and bump the version. A redemption computed against the old version is
 * refused by the redeem function (`campaign_changed`) and recomputed, so no discount is ever granted
 * under terms that were already replaced.
 */
export async function updateCampaignFields(
  db: Kysely<Database>,
  id: string,
  fields: CampaignFields,
  now: Date,
): Promise<CampaignRecord> {
  const row = await db
    .updateTable('campaigns')
    .set((eb) => ({ ...columns(fields), version: eb('version', '+', 1), updated_at: now }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return campaignFromRow(row);
}

/** Conditional on the status the caller saw, so two racing transitions cannot both apply. */
export async function setCampaignStatus(
  db: Kysely<Database>,
  id: string,
  from: CampaignStatus,
  to: CampaignStatus,
  now: Date,
): Promise<CampaignRecord | null> {
  const row = await db
    .updateTable('campaigns')
    .set({ status: to, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', from)
    .returningAll()
    .executeTakeFirst();
  return row ? campaignFromRow(row) : null;
}
