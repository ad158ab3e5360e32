/**
 * Money is an integer number of minor units (cents, yen) with an ISO 4217 currency.
 * Percentages are basis points (1 bp = 0.01 %). No floating point touches an amount.
 */

/**
 * The largest amount we accept anywhere (10^13 minor units). Products of an amount and a basis-point
 * rate are computed in BigInt, and sums of many amounts stay far below 2^53.
 */
export const MAX_AMOUNT_MINOR = 10_000_000_000_000;
export const MAX_BASIS_POINTS = 10_000;

export function isCurrency(value: string): boolean {
  return /^[A-Z]{3}$/.test(value);
}

/**
 * `amount * bp / 10000`, rounded half to even ("banker's rounding"): exact halves go to the even
 * neighbour, so rounding errors do not drift one way over many redemptions. 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
 */
export function percentOfHalfEven(amountMinor: number, basisPoints: number): number {
  if (!Number.isSafeInteger(amountMinor) || amountMinor < 0)
    throw new RangeError('amount must be a non-negative integer');
  if (!Number.isInteger(basisPoints) || basisPoints < 0 || basisPoints > MAX_BASIS_POINTS) {
    throw new RangeError('basis points must be an integer from 0 to 10000');
  }
  const numerator = BigInt(amountMinor) * BigInt(basisPoints);
  const denominator = 10_000n;
  const quotient = numerator / denominator;
  const twiceRemainder = (numerator % denominator) * 2n;
  let rounded = quotient;
  if (twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n)) rounded += 1n;
  return Number(rounded);
}

export type DiscountRule =
  | { type: 'fixed_amount'; amountMinor: number }
  | { type: 'percentage'; basisPoints: number; maxDiscountMinor: number | null }
  | { type: 'free_shipping' };

export interface CartTotals {
  subtotalMinor: number;
  shippingMinor: number;
}

/**
 * The discount a rule gives on a cart. Fixed and percentage discounts never exceed the subtotal
 * (a coupon never makes an order cost less than its shipping); a percentage never exceeds its maximum.
 * Free shipping discounts exactly the shipping amount.
 */
export function discountFor(rule: DiscountRule, cart: CartTotals): number {
  switch (rule.type) {
    case 'fixed_amount':
      return Math.min(rule.amountMinor, cart.subtotalMinor);
    case 'percentage': {
      const raw = percentOfHalfEven(cart.subtotalMinor, rule.basisPoints);
      const capped = rule.maxDiscountMinor === null ? raw : Math.min(raw, rule.maxDiscountMinor);
      return Math.min(capped, cart.subtotalMinor);
    }
    case 'free_shipping':
      return cart.shippingMinor;
  }
}
