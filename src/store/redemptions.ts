import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { RefusalReason } from '../domain/campaign.js';
import { retryOnConflict } from './retry.js';
import { parseJsonResult, type Redemption, type Row, redemptionFromRow, toNumber } from './rows.js';
import type { Database } from './schema.js';

export interface RedeemParams {
  id: string;
  eventId: string;
  idempotencyKey: string;
  fingerprint: string;
  codeId: string;
  campaignId: string;
  campaignVersion: number;
  customerId: string;
  orderId: string | null;
  currency: string;
  subtotalMinor: number;
  discountMinor: number;
  now: Date;
  perCustomerCap: number | null;
  perPersonCap: number | null;
  throttlePerMinute: number | null;
  partner: string | null;
  /** A fresh person id, used if none of the identity keys belongs to a person yet. */
  personCandidate: string;
  /** 'customer:<id>' and '<type>:<hmac>' keys to link into one person; empty = no linking. */
  identityKeys: string[];
  /** What is stored with the redemption for analysts: hashes and non-personal facts only. */
  context: Record<string, unknown> | null;
  /** The risk decision (stored with the redemption), or null when no rules ran. */
  decision: Record<string, unknown> | null;
  /** Held for review: the redemption is made, flagged `pending`. */
  review: boolean;
}

export type RedeemOutcome =
  | { outcome: 'redeemed'; redemption: Redemption }
  | { outcome: 'replayed'; redemption: Redemption }
  | { outcome: 'refused'; reason: RefusalReason };

/** The one statement a redemption issues; exported so the benchmark drives exactly this SQL. */
export const REDEEM_SQL =
  'SELECT promoguard_redeem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19::text[], $20::jsonb, $21::jsonb, $22) AS result';

export function redeemArgs(p: RedeemParams): unknown[] {
  return [
    p.id,
    p.eventId,
    p.idempotencyKey,
    p.fingerprint,
    p.codeId,
    p.campaignId,
    p.campaignVersion,
    p.customerId,
    p.orderId,
    p.currency,
    p.subtotalMinor,
    p.discountMinor,
    p.now.toISOString(),
    p.perCustomerCap,
    p.perPersonCap,
    p.throttlePerMinute,
    p.partner,
    p.personCandidate,
    p.identityKeys,
    p.context === null ? null : JSON.stringify(p.context),
    p.decision === null ? null : JSON.stringify(p.decision),
    p.review,
  ];
}

export async function redeem(db: Kysely<Database>, p: RedeemParams): Promise<RedeemOutcome> {
  const { rows } = await retryOnConflict(() =>
    db.executeQuery<{ result: unknown }>(CompiledQuery.raw(REDEEM_SQL, redeemArgs(p))),
  );
  const result = parseJsonResult(rows[0]?.result);
  switch (result.outcome) {
    case 'redeemed':
    case 'replayed':
      return { outcome: result.outcome, redemption: redemptionFromRow(result.redemption as Row) };
    case 'refused':
      return { outcome: 'refused', reason: result.reason as RefusalReason };
    default:
      throw new Error(`unexpected redeem outcome ${String(result.outcome)}`);
  }
}

export type RollbackOutcome =
  | { outcome: 'rolled_back'; redemption: Redemption }
  | { outcome: 'already_rolled_back'; redemption: Redemption }
  | { outcome: 'not_found' };

export async function rollback(
  db: Kysely<Database>,
  p: { id: string; eventId: string; reason: string | null; now: Date },
): Promise<RollbackOutcome> {
  const { rows } = await retryOnConflict(() =>
    sql<{ result: unknown }>`
    SELECT promoguard_rollback(${p.id}, ${p.eventId}, ${p.reason}, ${p.now.toISOString()}::timestamptz) AS result`.execute(
      db,
    ),
  );
  const result = parseJsonResult(rows[0]?.result);
  if (result.outcome === 'not_found') return { outcome: 'not_found' };
  if (result.outcome === 'rolled_back' || result.outcome === 'already_rolled_back') {
    return { outcome: result.outcome, redemption: redemptionFromRow(result.redemption as Row) };
  }
  throw new Error(`unexpected rollback outcome ${String(result.outcome)}`);
}

export async function findRedemptionByKey(db: Kysely<Database>, key: string): Promise<Redemption | null> {
  const row = await db
    .selectFrom('redemptions')
    .selectAll()
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
  return row ? redemptionFromRow(row as unknown as Row) : null;
}

export async function findRedemption(db: Kysely<Database>, id: string): Promise<Redemption | null> {
  const row = await db.selectFrom('redemptions').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? redemptionFromRow(row as unknown as Row) : null;
}

export async function listRedemptions(
  db: Kysely<Database>,
  filter: {
    campaignId?: string | undefined;
    customerId?: string | undefined;
    limit: number;
    before?: string | undefined;
  },
): Promise<Redemption[]> {
  let query = db.selectFrom('redemptions').selectAll().orderBy('id', 'desc').limit(filter.limit);
  if (filter.campaignId) query = query.where('campaign_id', '=', filter.campaignId);
  if (filter.customerId) query = query.where('customer_id', '=', filter.customerId);
  if (filter.before) query = query.where('id', '<', filter.before);
  const rows = await query.execute();
  return rows.map((r) => redemptionFromRow(r as unknown as Row));
}

export interface CampaignReconciliation {
  /** Sum of the promo_expense ledger account: what the ledger says was given. */
  ledgerSpentMinor: number;
  /** Sum of discounts of redemptions still in force. */
  redemptionsSpentMinor: number;
  activeRedemptions: number;
  /** Debits minus credits over both accounts: zero for a balanced double-entry ledger. */
  ledgerImbalanceMinor: number;
}

export async function reconcileCampaign(
  db: Kysely<Database>,
  campaignId: string,
): Promise<CampaignReconciliation> {
  const { rows } = await sql<Row>`
    SELECT
      (SELECT COALESCE(SUM(amount_minor), 0) FROM ledger_entries
        WHERE campaign_id = ${campaignId} AND account = 'promo_expense') AS ledger_spent,
      (SELECT COALESCE(SUM(amount_minor), 0) FROM ledger_entries WHERE campaign_id = ${campaignId}) AS imbalance,
      (SELECT COALESCE(SUM(discount_minor), 0) FROM redemptions
        WHERE campaign_id = ${campaignId} AND status = 'redeemed') AS redemptions_spent,
      (SELECT COUNT(*) FROM redemptions WHERE campaign_id = ${campaignId} AND status = 'redeemed') AS active`.execute(
    db,
  );
  const row = rows[0] as Row;
  return {
    ledgerSpentMinor: toNumber(row.ledger_spent),
    redemptionsSpentMinor: toNumber(row.redemptions_spent),
    activeRedemptions: toNumber(row.active),
    ledgerImbalanceMinor: toNumber(row.imbalance),
  };
}
