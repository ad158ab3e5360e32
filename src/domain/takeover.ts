/**
 * Account-takeover features: what a customer's own history says about a loyalty request (a conversion,
 * a wallet read, the redemption of a coupon made from points). A thief holding a member's session comes
 * from a device, an address and a card the member never used, at an hour the member does not shop, and
 * drains the balance and spends it at once; the member converts part of it from the usual device. Pure:
 * the history arrives as facts read by the store.
 */
import type { IpAddress } from './identity/index.js';
import type { FeatureValues } from './risk.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** Below this many recorded actions, the hour-of-day share says nothing yet (absent). */
export const MIN_HOUR_HISTORY = 5;

/** The customer's history as read for one request (store/takeover.ts). */
export interface TakeoverFacts {
  /** null: the request did not carry the identifier. */
  deviceKnown: boolean | null;
  prefixKnown: boolean | null;
  paymentKnown: boolean | null;
  /** Actions (conversions and redemptions) recorded per UTC hour, 24 entries. */
  hours: readonly number[];
  lastConversionAt: Date | null;
  balance: number;
  convertedToday: number;
}

export interface TakeoverRequest {
  now: Date;
  /** For a conversion: the points asked for (share of the balance). */
  points?: number | undefined;
  /** For the redemption of a loyalty coupon: when the coupon was made. */
  couponCreatedAt?: Date | undefined;
}

const flag = (known: boolean | null, name: string, into: FeatureValues) => {
  if (known !== null) into[name] = known ? 0 : 1;
};

/**
 * The share of the customer's recorded actions in this UTC hour and its two neighbours (a customer who
 * shops in the evening also shops an hour earlier or later); null under MIN_HOUR_HISTORY actions.
 */
export function hourShare(hours: readonly number[], now: Date): number | null {
  const total = hours.reduce((a, b) => a + b, 0);
  if (total < MIN_HOUR_HISTORY) return null;
  const h = now.getUTCHours();
  const near = [23, 0, 1].reduce((sum, d) => sum + (hours[(h + d) % 24] ?? 0), 0);
  return near / total;
}

/** The takeover features of one request (see FEATURES in domain/risk.ts for their meaning). */
export function takeoverFeatures(facts: TakeoverFacts, req: TakeoverRequest): FeatureValues {
  const f: FeatureValues = {};
  flag(facts.deviceKnown, 'customer_device_new', f);
  flag(facts.prefixKnown, 'customer_prefix_new', f);
  flag(facts.paymentKnown, 'customer_payment_new', f);
  f.customer_history_actions = facts.hours.reduce((a, b) => a + b, 0);
  const share = hourShare(facts.hours, req.now);
  if (share !== null) f.customer_hour_share = share;
  if (facts.lastConversionAt) {
    f.hours_since_last_conversion = Math.max(
      0,
      (req.now.getTime() - facts.lastConversionAt.getTime()) / HOUR,
    );
  }
  if (req.points !== undefined && facts.balance > 0) {
    f.conversion_balance_share = Math.min(1, req.points / facts.balance);
  }
  if (req.couponCreatedAt) {
    f.loyalty_coupon_age_minutes = Math.max(0, (req.now.getTime() - req.couponCreatedAt.getTime()) / MINUTE);
  }
  return f;
}

/**
 * The network a client address belongs to for "new address for this customer": an IPv4 /24 or an IPv6
 * /48 (a home or office keeps its prefix while its host part or its privacy address changes), as
 * canonical text to be hashed. Never stored in the clear.
 */
export function addressPrefix(address: IpAddress): string {
  if (address.version === 4) {
    const net = (address.value >> 8n) << 8n;
    return `${[24, 16, 8, 0].map((s) => Number((net >> BigInt(s)) & 0xffn)).join('.')}/24`;
  }
  const net = address.value >> 80n;
  const groups = [32, 16, 0].map((s) => Number((net >> BigInt(s)) & 0xffffn).toString(16));
  return `${groups.join(':')}::/48`;
}
