import { CompiledQuery, type Kysely } from 'kysely';
import type { AtomicRefusal } from '../domain/campaign.js';
import { dbFunction } from './functions.js';
import { retryOnConflict } from './retry.js';
import { parseJsonResult, type Redemption, type RedemptionRow, redemptionFromRow } from './rows.js';
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
  /** An identifier already shared by this many other customers links nobody (null: no limit). */
  sharedLimit?: number | null | undefined;
}

export type RedeemOutcome =
  | { outcome: 'redeemed'; redemption: Redemption }
  | { outcome: 'replayed'; redemption: Redemption }
  | { outcome: 'refused'; reason: AtomicRefusal };

export const REDEEM = dbFunction('promoguard_redeem', {
  id: 'text',
  event_id: 'text',
  idempotency_key: 'text',
  fingerprint: 'text',
  code_id: 'text',
  campaign_id: 'text',
  campaign_version: 'integer',
  customer_id: 'text',
  order_id: 'text?',
  currency: 'text',
  subtotal_minor: 'bigint',
  discount_minor: 'bigint',
  now: 'timestamptz',
  per_customer_cap: 'integer?',
  per_person_cap: 'integer?',
  throttle_per_minute: 'integer?',
  partner: 'text?',
  person_candidate: 'text',
  identity_keys: 'text[]',
  context: 'jsonb?',
  decision: 'jsonb?',
  review: 'boolean',
  shared_limit: 'integer?',
});

/** The one statement a redemption issues; exported so the benchmark drives exactly this SQL. */
export const REDEEM_SQL = REDEEM.sql;

export function redeemArgs(p: RedeemParams): unknown[] {
  return REDEEM.values({
    id: p.id,
    event_id: p.eventId,
    idempotency_key: p.idempotencyKey,
    fingerprint: p.fingerprint,
    code_id: p.codeId,
    campaign_id: p.campaignId,
    campaign_version: p.campaignVersion,
    customer_id: p.customerId,
    order_id: p.orderId,
    currency: p.currency,
    subtotal_minor: p.subtotalMinor,
    discount_minor: p.discountMinor,
    now: p.now.toISOString(),
    per_customer_cap: p.perCustomerCap,
    per_person_cap: p.perPersonCap,
    throttle_per_minute: p.throttlePerMinute,
    partner: p.partner,
    person_candidate: p.personCandidate,
    identity_keys: p.identityKeys,
    context: p.context === null ? null : JSON.stringify(p.context),
    decision: p.decision === null ? null : JSON.stringify(p.decision),
    review: p.review,
    shared_limit: p.sharedLimit ?? null,
  });
}

type RedeemResult =
  | { outcome: 'redeemed' | 'replayed'; redemption: RedemptionRow }
  | { outcome: 'refused'; reason: AtomicRefusal };

export async function redeem(db: Kysely<Database>, p: RedeemParams): Promise<RedeemOutcome> {
  const { rows } = await retryOnConflict(() =>
    db.executeQuery<{ result: unknown }>(CompiledQuery.raw(REDEEM_SQL, redeemArgs(p))),
  );
  const result = parseJsonResult<RedeemResult>(rows[0]?.result);
  if (result.outcome === 'refused') return result;
  return { outcome: result.outcome, redemption: redemptionFromRow(result.redemption) };
}

export const ROLLBACK = dbFunction('promoguard_rollback', {
  id: 'text',
  event_id: 'text',
  reason: 'text?',
  now: 'timestamptz',
});

export type RollbackOutcome =
  | { outcome: 'rolled_back'; redemption: Redemption }
  | { outcome: 'already_rolled_back'; redemption: Redemption }
  | { outcome: 'not_found' };

type RollbackResult =
  | { outcome: 'rolled_back' | 'already_rolled_back'; redemption: RedemptionRow }
  | { outcome: 'not_found' };

export async function rollback(
  db: Kysely<Database>,
  p: { id: string; eventId: string; reason: string | null; now: Date },
): Promise<RollbackOutcome> {
  const args = ROLLBACK.values({ id: p.id, event_id: p.eventId, reason: p.reason, now: p.now.toISOString() });
  const { rows } = await retryOnConflict(() =>
    db.executeQuery<{ result: unknown }>(CompiledQuery.raw(ROLLBACK.sql, args)),
  );
  const result = parseJsonResult<RollbackResult>(rows[0]?.result);
  if (result.outcome === 'not_found') return result;
  return { outcome: result.outcome, redemption: redemptionFromRow(result.redemption) };
}

export async function findRedemptionByKey(db: Kysely<Database>, key: string): Promise<Redemption | null> {
  const row = await db
    .selectFrom('redemptions')
    .selectAll()
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
  return row ? redemptionFromRow(row) : null;
}

export async function findRedemption(db: Kysely<Database>, id: string): Promise<Redemption | null> {
  const row = await db.selectFrom('redemptions').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? redemptionFromRow(row) : null;
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
  return rows.map(redemptionFromRow);
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
  const ledger = await db
    .selectFrom('ledger_entries')
    .where('campaign_id', '=', campaignId)
    .select((eb) => [
      eb.fn
        .coalesce(
          eb.fn.sum<number>(
            eb.case().when('account', '=', 'promo_expense').then(eb.ref('amount_minor')).end(),
          ),
          eb.lit(0),
        )
        .as('spent'),
      eb.fn.coalesce(eb.fn.sum<number>('amount_minor'), eb.lit(0)).as('imbalance'),
    ])
    .executeTakeFirstOrThrow();
  const inForce = await db
    .selectFrom('redemptions')
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'redeemed')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('discount_minor'), eb.lit(0)).as('spent'),
      eb.fn.countAll<number>().as('active'),
    ])
    .executeTakeFirstOrThrow();
  return {
    ledgerSpentMinor: Number(ledger.spent),
    redemptionsSpentMinor: Number(inForce.spent),
    activeRedemptions: Number(inForce.active),
    ledgerImbalanceMinor: Number(ledger.imbalance),
  };
}
