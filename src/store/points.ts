import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { ConversionPolicy } from '../domain/points.js';
import { retryOnConflict } from './retry.js';
import { type CodeRecord, codeFromRow, parseJsonResult, type Row, toDate, toNumber } from './rows.js';
import type { Database } from './schema.js';

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

export function programFromRow(row: Row): PointsProgram {
  const tiers =
    typeof row.tier_multipliers_bp === 'string'
      ? JSON.parse(row.tier_multipliers_bp)
      : row.tier_multipliers_bp;
  return {
    id: String(row.id),
    name: String(row.name),
    campaignId: String(row.campaign_id),
    currency: String(row.currency),
    policy: {
      minorPerPoint: toNumber(row.minor_per_point),
      minPoints: toNumber(row.min_points),
      stepPoints: toNumber(row.step_points),
      maxPointsPerConversion: toNumber(row.max_points_per_conversion),
      dailyLimitPoints: toNumber(row.daily_limit_points),
      validityMonths: toNumber(row.validity_months),
      multiplierBp: toNumber(row.multiplier_bp),
      tierMultipliersBp: (tiers ?? {}) as Record<string, number>,
    },
    codeFormat: String(row.code_format),
    refundOnExpiry: row.refund_on_expiry === true,
    createdAt: toDate(row.created_at),
  };
}

export async function insertProgram(
  db: Kysely<Database>,
  p: Omit<PointsProgram, 'createdAt'>,
  now: Date,
): Promise<PointsProgram> {
  const { rows } = await sql<Row>`
    INSERT INTO points_programs (id, name, campaign_id, currency, minor_per_point, min_points, step_points,
      max_points_per_conversion, daily_limit_points, validity_months, multiplier_bp, tier_multipliers_bp,
      code_format, refund_on_expiry, created_at, updated_at)
    VALUES (${p.id}, ${p.name}, ${p.campaignId}, ${p.currency}, ${p.policy.minorPerPoint}, ${p.policy.minPoints},
      ${p.policy.stepPoints}, ${p.policy.maxPointsPerConversion}, ${p.policy.dailyLimitPoints},
      ${p.policy.validityMonths}, ${p.policy.multiplierBp}, ${JSON.stringify(p.policy.tierMultipliersBp)}::jsonb,
      ${p.codeFormat}, ${p.refundOnExpiry}, ${now}, ${now})
    RETURNING *`.execute(db);
  return programFromRow(rows[0] as Row);
}

export async function findProgram(db: Kysely<Database>, id: string): Promise<PointsProgram | null> {
  const { rows } = await sql<Row>`SELECT * FROM points_programs WHERE id = ${id}`.execute(db);
  return rows[0] ? programFromRow(rows[0]) : null;
}

export async function listPrograms(db: Kysely<Database>): Promise<PointsProgram[]> {
  const { rows } = await sql<Row>`SELECT * FROM points_programs ORDER BY id DESC`.execute(db);
  return rows.map(programFromRow);
}

export interface PointsMovement {
  id: number;
  customerId: string;
  kind: 'credit' | 'debit' | 'conversion' | 'expiry_refund';
  points: number;
  balanceAfter: number;
  reason: string | null;
  idempotencyKey: string | null;
  requestFingerprint: string | null;
  conversionId: string | null;
  createdAt: Date;
}

export function movementFromRow(row: Row): PointsMovement {
  const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    id: toNumber(row.id),
    customerId: String(row.customer_id),
    kind: row.kind as PointsMovement['kind'],
    points: toNumber(row.points),
    balanceAfter: toNumber(row.balance_after),
    reason: str(row.reason),
    idempotencyKey: str(row.idempotency_key),
    requestFingerprint: str(row.request_fingerprint),
    conversionId: str(row.conversion_id),
    createdAt: toDate(row.created_at),
  };
}

export type ApplyOutcome =
  | { outcome: 'applied' | 'replayed'; movement: PointsMovement }
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
  const { rows } = await sql<{ result: unknown }>`
    SELECT promoguard_points_apply(${p.customerId}, ${p.kind}, ${p.points}, ${p.reason}, ${p.key},
      ${p.fingerprint}, ${p.eventId}, ${p.now.toISOString()}::timestamptz) AS result`.execute(db);
  const r = parseJsonResult(rows[0]?.result);
  if (r.outcome === 'refused') return { outcome: 'refused', reason: 'insufficient_points' };
  return { outcome: r.outcome as 'applied' | 'replayed', movement: movementFromRow(r.movement as Row) };
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

function conversionFromRow(row: Row): Conversion {
  return {
    id: String(row.id),
    idempotencyKey: String(row.idempotency_key),
    requestFingerprint: String(row.request_fingerprint),
    customerId: String(row.customer_id),
    programId: String(row.program_id),
    points: toNumber(row.points),
    amountMinor: toNumber(row.amount_minor),
    currency: String(row.currency),
    codeId: String(row.code_id),
    utcDay: String(row.utc_day).slice(0, 10),
    createdAt: toDate(row.created_at),
    refundedAt: row.refunded_at === null || row.refunded_at === undefined ? null : toDate(row.refunded_at),
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

export type ConvertOutcome =
  | { outcome: 'converted' | 'replayed'; conversion: Conversion; code: CodeRecord }
  | {
      outcome: 'refused';
      reason: 'insufficient_points' | 'daily_conversion_limit_exceeded' | 'points_program_inactive';
    }
  | { outcome: 'code_collision' };

/** The one statement a conversion issues. */
export const CONVERT_SQL =
  'SELECT promoguard_convert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::date, $12, $13, $14, $15, $16::timestamptz, $17::timestamptz) AS result';

export async function convertPoints(db: Kysely<Database>, p: ConvertParams): Promise<ConvertOutcome> {
  const { rows } = await retryOnConflict(() =>
    db.executeQuery<{ result: unknown }>(
      CompiledQuery.raw(CONVERT_SQL, [
        p.id,
        p.eventId,
        p.key,
        p.fingerprint,
        p.customerId,
        p.programId,
        p.points,
        p.amountMinor,
        p.currency,
        p.dailyLimit,
        p.utcDay,
        p.codeId,
        p.code,
        p.normalized,
        p.campaignId,
        p.expiresAt.toISOString(),
        p.now.toISOString(),
      ]),
    ),
  );
  const r = parseJsonResult(rows[0]?.result);
  switch (r.outcome) {
    case 'converted':
    case 'replayed':
      return {
        outcome: r.outcome,
        conversion: conversionFromRow(r.conversion as Row),
        code: codeFromRow(r.code as Row),
      };
    case 'refused':
      return {
        outcome: 'refused',
        reason: r.reason as
          | 'insufficient_points'
          | 'daily_conversion_limit_exceeded'
          | 'points_program_inactive',
      };
    case 'code_collision':
      return { outcome: 'code_collision' };
    default:
      throw new Error(`unexpected conversion outcome ${String(r.outcome)}`);
  }
}

export async function findConversionByKey(
  db: Kysely<Database>,
  customerId: string,
  key: string,
): Promise<Conversion | null> {
  const { rows } = await sql<Row>`
    SELECT * FROM conversions WHERE customer_id = ${customerId} AND idempotency_key = ${key}`.execute(db);
  return rows[0] ? conversionFromRow(rows[0]) : null;
}

export async function pointsSummary(
  db: Kysely<Database>,
  customerId: string,
  day: string,
): Promise<{ balance: number; convertedToday: number }> {
  const { rows } = await sql<Row>`
    SELECT COALESCE((SELECT balance FROM points_accounts WHERE customer_id = ${customerId}), 0) AS balance,
           COALESCE((SELECT points FROM points_daily WHERE customer_id = ${customerId} AND utc_day = ${day}::date), 0)
             AS converted_today`.execute(db);
  const row = rows[0] as Row;
  return { balance: toNumber(row.balance), convertedToday: toNumber(row.converted_today) };
}

export async function listMovements(
  db: Kysely<Database>,
  customerId: string,
  page: { limit: number; before?: number | undefined },
): Promise<PointsMovement[]> {
  const { rows } = await sql<Row>`
    SELECT * FROM points_movements
     WHERE customer_id = ${customerId} ${page.before === undefined ? sql`` : sql`AND id < ${page.before}`}
     ORDER BY id DESC LIMIT ${page.limit}`.execute(db);
  return rows.map(movementFromRow);
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
  const { rows } = await sql<Row>`
    SELECT to_jsonb(k) AS code, c.currency, c.amount_minor AS campaign_amount, c.discount_type, c.ends_at,
           c.status AS campaign_status,
           (SELECT max(r.created_at) FROM redemptions r WHERE r.code_id = k.id AND r.status = 'redeemed') AS used_at
      FROM codes k JOIN campaigns c ON c.id = k.campaign_id
     WHERE k.customer_id = ${customerId} ${page.before === undefined ? sql`` : sql`AND k.id < ${page.before}`}
     ORDER BY k.id DESC
     LIMIT ${page.limit}`.execute(db);
  return rows.map((r) => ({
    code: codeFromRow(r.code as Row),
    currency: String(r.currency),
    campaignAmountMinor: r.campaign_amount === null ? null : toNumber(r.campaign_amount),
    campaignDiscountType: String(r.discount_type),
    campaignEndsAt: r.ends_at === null || r.ends_at === undefined ? null : toDate(r.ends_at),
    campaignStatus: String(r.campaign_status),
    usedAt: r.used_at === null || r.used_at === undefined ? null : toDate(r.used_at),
  }));
}

export async function expiredRefundable(db: Kysely<Database>, now: Date, limit: number): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    SELECT c.id FROM conversions c
      JOIN points_programs p ON p.id = c.program_id
      JOIN codes k ON k.id = c.code_id
     WHERE p.refund_on_expiry AND c.refunded_at IS NULL AND k.uses = 0 AND k.expires_at <= ${now}
     ORDER BY c.id LIMIT ${limit}`.execute(db);
  return rows.map((r) => r.id);
}

export async function refundExpired(
  db: Kysely<Database>,
  conversionId: string,
  eventId: string,
  now: Date,
): Promise<boolean> {
  const { rows } = await sql<{ result: unknown }>`
    SELECT promoguard_refund_expired(${conversionId}, ${eventId}, ${now.toISOString()}::timestamptz) AS result`.execute(
    db,
  );
  return parseJsonResult(rows[0]?.result).outcome === 'refunded';
}
