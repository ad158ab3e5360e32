import { CompiledQuery, type Kysely, type Selectable, sql } from 'kysely';
import type { ConversionPolicy } from '../domain/points.js';
import { dbFunction } from './functions.js';
import { retryOnConflict } from './retry.js';
import { type CodeRecord, codeFromRow, parseJsonResult, toDate, toDateOrNull } from './rows.js';
import type {
  CodesTable,
  ConversionsTable,
  Database,
  JsonRow,
  MovementKind,
  PointsMovementsTable,
  PointsProgramsTable,
} from './schema.js';
import { type LoyaltyDecision, withConversionDecision } from './takeover.js';

export interface PointsProgram {
  id: string;
  name: string;
  campaignId: string;
  currency: string;
  policy: ConversionPolicy;
  codeFormat: string;
  refundOnExpiry: boolean;
  createdAt: Date;
}

export function programFromRow(row: Selectable<PointsProgramsTable>): PointsProgram {
  return {
    id: row.id,
    name: row.name,
    campaignId: row.campaign_id,
    currency: row.currency,
    policy: {
      minorPerPoint: row.minor_per_point,
      minPoints: row.min_points,
      stepPoints: row.step_points,
      maxPointsPerConversion: row.max_points_per_conversion,
      dailyLimitPoints: row.daily_limit_points,
      validityMonths: row.validity_months,
      multiplierBp: row.multiplier_bp,
      tierMultipliersBp: parseJsonResult<Record<string, number> | null>(row.tier_multipliers_bp) ?? {},
    },
    codeFormat: row.code_format,
    refundOnExpiry: row.refund_on_expiry,
    createdAt: row.created_at,
  };
}

export async function insertProgram(
  db: Kysely<Database>,
  p: Omit<PointsProgram, 'createdAt'>,
  now: Date,
): Promise<PointsProgram> {
  const row = await db
    .insertInto('points_programs')
    .values({
      id: p.id,
      name: p.name,
      campaign_id: p.campaignId,
      currency: p.currency,
      minor_per_point: p.policy.minorPerPoint,
      min_points: p.policy.minPoints,
      step_points: p.policy.stepPoints,
      max_points_per_conversion: p.policy.maxPointsPerConversion,
      daily_limit_points: p.policy.dailyLimitPoints,
      validity_months: p.policy.validityMonths,
      multiplier_bp: p.policy.multiplierBp,
      tier_multipliers_bp: JSON.stringify(p.policy.tierMultipliersBp),
      code_format: p.codeFormat,
      refund_on_expiry: p.refundOnExpiry,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return programFromRow(row);
}

export async function findProgram(db: Kysely<Database>, id: string): Promise<PointsProgram | null> {
  const row = await db.selectFrom('points_programs').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? programFromRow(row) : null;
}

export async function listPrograms(db: Kysely<Database>): Promise<PointsProgram[]> {
  const rows = await db.selectFrom('points_programs').selectAll().orderBy('id', 'desc').execute();
  return rows.map(programFromRow);
}

export interface PointsMovement {
  id: number;
  customerId: string;
  kind: MovementKind;
  points: number;
  balanceAfter: number;
  reason: string | null;
  idempotencyKey: string | null;
  requestFingerprint: string | null;
  conversionId: string | null;
  createdAt: Date;
}

export function movementFromRow(row: JsonRow<PointsMovementsTable>): PointsMovement {
  return {
    id: row.id,
    customerId: row.customer_id,
    kind: row.kind,
    points: row.points,
    balanceAfter: row.balance_after,
    reason: row.reason,
    idempotencyKey: row.idempotency_key,
    requestFingerprint: row.request_fingerprint,
    conversionId: row.conversion_id,
    createdAt: toDate(row.created_at),
  };
}

export type ApplyOutcome =
  | { outcome: 'applied' | 'replayed'; movement: PointsMovement }
  | { outcome: 'refused'; reason: 'insufficient_points' };

export const POINTS_APPLY = dbFunction('promoguard_points_apply', {
  customer_id: 'text',
  kind: 'text',
  points: 'bigint',
  reason: 'text',
  key: 'text',
  fingerprint: 'text',
  event_id: 'text',
  now: 'timestamptz',
});

type ApplyResult =
  | { outcome: 'applied' | 'replayed'; movement: JsonRow<PointsMovementsTable> }
  | { outcome: 'refused'; reason: 'insufficient_points' };

export async function applyPoints(
  db: Kysely<Database>,
  p: {
    customerId: string;
    kind: 'credit' | 'debit';
    points: number;
    reason: string;
    key: string;
    fingerprint: string;
    eventId: string;
    now: Date;
  },
): Promise<ApplyOutcome> {
  const args = POINTS_APPLY.values({
    customer_id: p.customerId,
    kind: p.kind,
    points: p.points,
    reason: p.reason,
    key: p.key,
    fingerprint: p.fingerprint,
    event_id: p.eventId,
    now: p.now.toISOString(),
  });
  const { rows } = await db.executeQuery<{ result: unknown }>(CompiledQuery.raw(POINTS_APPLY.sql, args));
  const r = parseJsonResult<ApplyResult>(rows[0]?.result);
  if (r.outcome === 'refused') return r;
  return { outcome: r.outcome, movement: movementFromRow(r.movement) };
}

export interface Conversion {
  id: string;
  idempotencyKey: string;
  requestFingerprint: string;
  customerId: string;
  programId: string;
  points: number;
  amountMinor: number;
  currency: string;
  codeId: string;
  utcDay: string;
  createdAt: Date;
  refundedAt: Date | null;
}

function conversionFromRow(row: JsonRow<ConversionsTable>): Conversion {
  return {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    requestFingerprint: row.request_fingerprint,
    customerId: row.customer_id,
    programId: row.program_id,
    points: row.points,
    amountMinor: row.amount_minor,
    currency: row.currency,
    codeId: row.code_id,
    utcDay: row.utc_day.slice(0, 10),
    createdAt: toDate(row.created_at),
    refundedAt: toDateOrNull(row.refunded_at),
  };
}

export interface ConvertParams {
  id: string;
  eventId: string;
  key: string;
  fingerprint: string;
  customerId: string;
  programId: string;
  points: number;
  amountMinor: number;
  currency: string;
  dailyLimit: number;
  utcDay: string;
  codeId: string;
  code: string;
  normalized: string;
  campaignId: string;
  expiresAt: Date;
  now: Date;
}

export type ConversionRefusal =
  | 'insufficient_points'
  | 'daily_conversion_limit_exceeded'
  | 'points_program_inactive';

export type ConvertOutcome =
  | { outcome: 'converted' | 'replayed'; conversion: Conversion; code: CodeRecord }
  | { outcome: 'refused'; reason: ConversionRefusal }
  | { outcome: 'code_collision' };

export const CONVERT = dbFunction('promoguard_convert', {
  id: 'text',
  event_id: 'text',
  key: 'text',
  fingerprint: 'text',
  customer_id: 'text',
  program_id: 'text',
  points: 'bigint',
  amount_minor: 'bigint',
  currency: 'text',
  daily_limit: 'bigint',
  utc_day: 'date',
  code_id: 'text',
  code: 'text',
  normalized: 'text',
  campaign_id: 'text',
  expires_at: 'timestamptz',
  now: 'timestamptz',
});

type ConvertResult =
  | { outcome: 'converted' | 'replayed'; conversion: JsonRow<ConversionsTable>; code: JsonRow<CodesTable> }
  | { outcome: 'refused'; reason: ConversionRefusal }
  | { outcome: 'code_collision' };

/** With `decision`, the decision that let the conversion through is stored in the same statement. */
export async function convertPoints(
  db: Kysely<Database>,
  p: ConvertParams,
  decision?: LoyaltyDecision,
): Promise<ConvertOutcome> {
  const args = CONVERT.values({
    id: p.id,
    event_id: p.eventId,
    key: p.key,
    fingerprint: p.fingerprint,
    customer_id: p.customerId,
    program_id: p.programId,
    points: p.points,
    amount_minor: p.amountMinor,
    currency: p.currency,
    daily_limit: p.dailyLimit,
    utc_day: p.utcDay,
    code_id: p.codeId,
    code: p.code,
    normalized: p.normalized,
    campaign_id: p.campaignId,
    expires_at: p.expiresAt.toISOString(),
    now: p.now.toISOString(),
  });
  const statement = decision
    ? withConversionDecision(CONVERT.sql, args, decision)
    : { sql: CONVERT.sql, values: args };
  const { rows } = await retryOnConflict(() =>
    db.executeQuery<{ result: unknown }>(CompiledQuery.raw(statement.sql, statement.values)),
  );
  const r = parseJsonResult<ConvertResult>(rows[0]?.result);
  if (r.outcome === 'refused' || r.outcome === 'code_collision') return r;
  return { outcome: r.outcome, conversion: conversionFromRow(r.conversion), code: codeFromRow(r.code) };
}

export async function findConversionByKey(
  db: Kysely<Database>,
  customerId: string,
  key: string,
): Promise<Conversion | null> {
  const row = await db
    .selectFrom('conversions')
    .selectAll()
    .where('customer_id', '=', customerId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
  return row ? conversionFromRow(row) : null;
}

export async function pointsSummary(
  db: Kysely<Database>,
  customerId: string,
  day: string,
): Promise<{ balance: number; convertedToday: number }> {
  const row = await db
    .selectNoFrom((eb) => [
      eb.fn
        .coalesce(
          eb.selectFrom('points_accounts').select('balance').where('customer_id', '=', customerId),
          eb.lit(0),
        )
        .as('balance'),
      eb.fn
        .coalesce(
          eb
            .selectFrom('points_daily')
            .select('points')
            .where('customer_id', '=', customerId)
            .where('utc_day', '=', sql<string>`${day}::date`),
          eb.lit(0),
        )
        .as('converted_today'),
    ])
    .executeTakeFirstOrThrow();
  return { balance: Number(row.balance), convertedToday: Number(row.converted_today) };
}

export async function listMovements(
  db: Kysely<Database>,
  customerId: string,
  page: { limit: number; before?: number | undefined },
): Promise<PointsMovement[]> {
  let query = db
    .selectFrom('points_movements')
    .selectAll()
    .where('customer_id', '=', customerId)
    .orderBy('id', 'desc')
    .limit(page.limit);
  if (page.before !== undefined) query = query.where('id', '<', page.before);
  return (await query.execute()).map(movementFromRow);
}

export interface WalletEntry {
  code: CodeRecord;
  currency: string;
  campaignAmountMinor: number | null;
  campaignDiscountType: string;
  campaignEndsAt: Date | null;
  campaignStatus: string;
  usedAt: Date | null;
}

/** The codes bound to a customer, newest first, with what the wallet shows for each. */
export async function listWallet(
  db: Kysely<Database>,
  customerId: string,
  page: { limit: number; before?: string | undefined },
): Promise<WalletEntry[]> {
  let query = db
    .selectFrom('codes as k')
    .innerJoin('campaigns as c', 'c.id', 'k.campaign_id')
    .selectAll('k')
    .select((eb) => [
      'c.currency',
      'c.amount_minor as campaign_amount',
      'c.discount_type',
      'c.ends_at as campaign_ends_at',
      'c.status as campaign_status',
      eb
        .selectFrom('redemptions as r')
        .select((e) => e.fn.max('r.created_at').as('used_at'))
        .whereRef('r.code_id', '=', 'k.id')
        .where('r.status', '=', 'redeemed')
        .as('used_at'),
    ])
    .where('k.customer_id', '=', customerId)
    .orderBy('k.id', 'desc')
    .limit(page.limit);
  if (page.before !== undefined) query = query.where('k.id', '<', page.before);
  const rows = await query.execute();
  return rows.map((r) => ({
    code: codeFromRow(r),
    currency: r.currency,
    campaignAmountMinor: r.campaign_amount,
    campaignDiscountType: r.discount_type,
    campaignEndsAt: r.campaign_ends_at,
    campaignStatus: r.campaign_status,
    usedAt: r.used_at ?? null,
  }));
}

export async function expiredRefundable(db: Kysely<Database>, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('conversions as c')
    .innerJoin('points_programs as p', 'p.id', 'c.program_id')
    .innerJoin('codes as k', 'k.id', 'c.code_id')
    .select('c.id')
    .where('p.refund_on_expiry', '=', true)
    .where('c.refunded_at', 'is', null)
    .where('k.uses', '=', 0)
    .where('k.expires_at', '<=', now)
    .orderBy('c.id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

export const REFUND_EXPIRED = dbFunction('promoguard_refund_expired', {
  conversion_id: 'text',
  event_id: 'text',
  now: 'timestamptz',
});

export async function refundExpired(
  db: Kysely<Database>,
  conversionId: string,
  eventId: string,
  now: Date,
): Promise<boolean> {
  const args = REFUND_EXPIRED.values({
    conversion_id: conversionId,
    event_id: eventId,
    now: now.toISOString(),
  });
  const { rows } = await db.executeQuery<{ result: unknown }>(CompiledQuery.raw(REFUND_EXPIRED.sql, args));
  return parseJsonResult<{ outcome: string }>(rows[0]?.result).outcome === 'refunded';
}
