/**
 * M5's view of one code: who and what redeemed it over a window — distinct customers, payment
 * instruments, devices and client addresses (all kept hashed), redemptions in force and rolled back.
 * Read through the campaign's redemption index (a per-code index would cost every redemption a write).
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

export interface CodeStats {
  redemptions: number;
  rolledBack: number;
  discountMinor: number;
  customers: number;
  paymentInstruments: number;
  devices: number;
  addresses: number;
  first: Date | null;
  last: Date | null;
}

export async function codeStats(
  db: Kysely<Database>,
  code: { id: string; campaignId: string },
  since: Date,
): Promise<CodeStats> {
  const { rows } = await sql<{
    redemptions: string | number;
    rolled_back: string | number;
    discount_minor: string | number;
    customers: string | number;
    payment_instruments: string | number;
    devices: string | number;
    addresses: string | number;
    first: Date | string | null;
    last: Date | string | null;
  }>`
    SELECT count(*) FILTER (WHERE status = 'redeemed') AS redemptions,
           count(*) FILTER (WHERE status = 'rolled_back') AS rolled_back,
           coalesce(sum(discount_minor) FILTER (WHERE status = 'redeemed'), 0) AS discount_minor,
           count(DISTINCT customer_id) AS customers,
           count(DISTINCT context->>'payment_fingerprint') AS payment_instruments,
           count(DISTINCT context->>'device_id') AS devices,
           count(DISTINCT context->>'ip') AS addresses,
           min(created_at) AS first, max(created_at) AS last
      FROM redemptions
     WHERE campaign_id = ${code.campaignId} AND code_id = ${code.id} AND created_at >= ${since}`.execute(db);
  const r = rows[0];
  const date = (v: Date | string | null | undefined) => (v == null ? null : new Date(v));
  return {
    redemptions: Number(r?.redemptions ?? 0),
    rolledBack: Number(r?.rolled_back ?? 0),
    discountMinor: Number(r?.discount_minor ?? 0),
    customers: Number(r?.customers ?? 0),
    paymentInstruments: Number(r?.payment_instruments ?? 0),
    devices: Number(r?.devices ?? 0),
    addresses: Number(r?.addresses ?? 0),
    first: date(r?.first),
    last: date(r?.last),
  };
}
