/**
 * Loyalty points turned into coupons: the conversion policy, the coupon's amount and validity, and
 * the coupon code format. Pure: the caller passes the time and the random symbols.
 *
 * Defaults follow the product document: 1 point = 1 unit of the currency, at least 100 points, in
 * steps of 100, at most 10,000 per conversion and 30,000 per customer per UTC day, valid for one year,
 * single use, bound to the customer, points not returned on expiry.
 */
import { CODE_ALPHABET, MAX_CODE_LENGTH } from './codes.js';
import { MAX_AMOUNT_MINOR } from './money.js';

export interface ConversionPolicy {
  /** Minor units one point is worth before multipliers (1 for JPY at 1 pt = 1 yen; 100 for USD at 1 pt = 1 dollar). */
  minorPerPoint: number;
  minPoints: number;
  stepPoints: number;
  maxPointsPerConversion: number;
  dailyLimitPoints: number;
  validityMonths: number;
  /** The program's (campaign) multiplier in basis points: 15000 = x1.5. */
  multiplierBp: number;
  /** Member-tier multipliers in basis points: { gold: 12000 } = x1.2 for gold members. */
  tierMultipliersBp: Record<string, number>;
}

export const DEFAULT_POLICY: ConversionPolicy = {
  minorPerPoint: 1,
  minPoints: 100,
  stepPoints: 100,
  maxPointsPerConversion: 10_000,
  dailyLimitPoints: 30_000,
  validityMonths: 12,
  multiplierBp: 10_000,
  tierMultipliersBp: {},
};

export type ConversionRefusal =
  | 'conversion_below_minimum'
  | 'conversion_not_in_steps'
  | 'conversion_above_maximum'
  | 'daily_conversion_limit_exceeded';

/**
 * Whether `points` may be converted by a customer who has converted `convertedToday` points this UTC
 * day. The database re-checks the daily limit (and the balance) atomically; this gives the precise
 * reason before any write.
 */
export function checkConversion(
  policy: ConversionPolicy,
  points: number,
  convertedToday: number,
): ConversionRefusal | null {
  if (!Number.isInteger(points) || points < policy.minPoints) return 'conversion_below_minimum';
  if (points % policy.stepPoints !== 0) return 'conversion_not_in_steps';
  if (points > policy.maxPointsPerConversion) return 'conversion_above_maximum';
  if (convertedToday + points > policy.dailyLimitPoints) return 'daily_conversion_limit_exceeded';
  return null;
}

/**
 * Whether the program defines `tier`, exactly as written: tier names are ids, so `Gold` is not `gold`.
 * A tier the program does not name is refused rather than counted as x1, or a typo in a caller's tier
 * would silently convert at the wrong rate.
 */
export function definesTier(policy: ConversionPolicy, tier: string): boolean {
  // Own properties only: a tier named `constructor` or `__proto__` must not reach Object.prototype.
  return Object.hasOwn(policy.tierMultipliersBp, tier);
}

/** The tiers a program defines, sorted, for the answer that refuses any other. */
export function knownTiers(policy: ConversionPolicy): string[] {
  return Object.keys(policy.tierMultipliersBp).sort();
}

/**
 * The coupon amount for `points`: points x minor-per-point x program multiplier x tier multiplier.
 * Multipliers multiply (x1.5 and gold x1.2 give x1.8) and are applied once, to the product, which is
 * then rounded down to a whole minor unit: a customer never receives a fraction the points did not
 * earn, and the rounding loss is below one minor unit per coupon.
 */
export function couponAmountMinor(
  policy: ConversionPolicy,
  points: number,
  tier?: string | undefined,
): number {
  // A replayed conversion whose tier was removed from the program since keeps its first answer; every
  // new conversion has passed definesTier.
  const tierBp =
    tier !== undefined && definesTier(policy, tier) ? (policy.tierMultipliersBp[tier] as number) : 10_000;
  const product =
    BigInt(points) * BigInt(policy.minorPerPoint) * BigInt(policy.multiplierBp) * BigInt(tierBp);
  const amount = product / 100_000_000n;
  if (amount > BigInt(MAX_AMOUNT_MINOR)) throw new RangeError('coupon amount exceeds the maximum amount');
  return Number(amount);
}

/** The UTC calendar day of an instant, `YYYY-MM-DD`: the daily limit resets at 00:00 UTC. */
export function utcDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/**
 * `months` calendar months after `from`, in UTC, at the same time of day; a day that the target month
 * lacks becomes its last day (Jan 31 + 1 month = Feb 28 or 29; Feb 29 + 12 months = Feb 28).
 */
export function addMonthsUtc(from: Date, months: number): Date {
  const target = new Date(from.getTime());
  const day = from.getUTCDate();
  target.setUTCDate(1);
  target.setUTCMonth(target.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, lastDay));
  return target;
}

/**
 * The last part shows the coupon's amount — what the customer gets off — not the points spent: with a
 * program or tier multiplier the two differ, and a code reading 1000 that takes 1,500 off misleads.
 */
export const DEFAULT_CODE_FORMAT = '{customer5}-{random6}-{amount}';
const PLACEHOLDER = /\{(customer5|random(\d+)|points|amount)\}/g;

export type CodeFormatProblem =
  | 'no_random_part'
  | 'random_part_too_short'
  | 'invalid_characters'
  | 'too_long';

/** The largest numbers a format's `{points}` and `{amount}` may have to show. */
export interface CodeFormatLimits {
  maxPoints: number;
  maxAmountMinor: number;
}

const WIDEST: CodeFormatLimits = { maxPoints: 1_000_000_000, maxAmountMinor: MAX_AMOUNT_MINOR };

/**
 * A format is literal letters, digits and separators with placeholders: `{customer5}` (the last five
 * digits of the customer id), `{randomN}` (N CSPRNG symbols, N >= 6), `{points}` (the points
 * converted) and `{amount}` (the coupon's amount in minor units). The random part is what makes a
 * coupon unguessable, so it is required.
 */
export function checkCodeFormat(format: string, limits: CodeFormatLimits = WIDEST): CodeFormatProblem | null {
  if (format.length > 64) return 'too_long';
  const placeholders = [...format.matchAll(PLACEHOLDER)];
  const randoms = placeholders.filter((m) => m[1]?.startsWith('random'));
  if (randoms.length === 0) return 'no_random_part';
  if (randoms.some((m) => Number(m[2]) < 6 || Number(m[2]) > 20)) return 'random_part_too_short';
  const literal = format.replace(PLACEHOLDER, '');
  if (!/^[A-Za-z0-9\-_ .]*$/.test(literal)) return 'invalid_characters';
  // The rendered code, separators removed, must fit a code's 64 symbols for the largest conversion.
  const width = (name: string | undefined, length: string | undefined): number => {
    if (name === 'customer5') return 5;
    if (name === 'points') return String(limits.maxPoints).length;
    if (name === 'amount') return String(limits.maxAmountMinor).length;
    return Number(length);
  };
  const expanded =
    literal.replace(/[^A-Za-z0-9]/g, '').length + placeholders.reduce((n, m) => n + width(m[1], m[2]), 0);
  if (expanded > MAX_CODE_LENGTH) return 'too_long';
  return null;
}

/** The largest coupon a program can issue: its largest conversion at its highest tier (capped at the maximum amount). */
export function maxCouponAmountMinor(policy: ConversionPolicy): number {
  const tierBp = Math.max(10_000, ...Object.values(policy.tierMultipliersBp));
  const product =
    (BigInt(policy.maxPointsPerConversion) *
      BigInt(policy.minorPerPoint) *
      BigInt(policy.multiplierBp) *
      BigInt(tierBp)) /
    100_000_000n;
  return product > BigInt(MAX_AMOUNT_MINOR) ? MAX_AMOUNT_MINOR : Number(product);
}

/** The last five digits of a customer id (left-padded with 0); ids without digits use their last five letters. */
export function customerTag(customerId: string): string {
  const digits = customerId.replace(/\D/g, '');
  if (digits.length > 0) return digits.slice(-5).padStart(5, '0');
  return (
    customerId
      .replace(/[^A-Za-z0-9]/g, '')
      .toUpperCase()
      .slice(-5) || 'X'
  ).padStart(5, '0');
}

/** Render a coupon code; `randomBytes` must be a CSPRNG. */
export function formatCouponCode(
  format: string,
  values: { customerId: string; points: number; amountMinor: number },
  randomBytes: (size: number) => Uint8Array,
): string {
  return format.replace(PLACEHOLDER, (_whole, name: string, length?: string) => {
    if (name === 'customer5') return customerTag(values.customerId);
    if (name === 'points') return String(values.points);
    if (name === 'amount') return String(values.amountMinor);
    const n = Number(length);
    const bytes = randomBytes(n);
    let out = '';
    for (let i = 0; i < n; i++) out += CODE_ALPHABET[(bytes[i] as number) & 31];
    return out;
  });
}
