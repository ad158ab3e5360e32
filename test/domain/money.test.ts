import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CartTotals,
  type DiscountRule,
  discountFor,
  MAX_AMOUNT_MINOR,
  MAX_BASIS_POINTS,
  percentOfHalfEven,
} from '../../src/domain/money.js';

/**
 * An independent reference for `amount * bp / 10000` rounded half to even: round half up with one
 * exact division, then pull exact ties that landed on an odd number back down to the even neighbour.
 */
function referenceHalfEven(amount: bigint, basisPoints: bigint): bigint {
  const numerator = amount * basisPoints;
  const twoDenominators = 20_000n;
  const halfUp = (2n * numerator + 10_000n) / twoDenominators;
  const isExactTie = (2n * numerator) % twoDenominators === 10_000n;
  return isExactTie && halfUp % 2n === 1n ? halfUp - 1n : halfUp;
}

const amountArb = fc.bigInt({ min: 0n, max: BigInt(MAX_AMOUNT_MINOR) }).map(Number);
const basisPointsArb = fc.integer({ min: 0, max: MAX_BASIS_POINTS });

function cart(overrides: Partial<CartTotals> = {}): CartTotals {
  return { subtotalMinor: 10_000, shippingMinor: 499, ...overrides };
}

describe('percentOfHalfEven', () => {
  it.each([
    // [amount, basis points, expected, why]
    [1, 5_000, 0, '0.5 goes down to the even 0'],
    [3, 5_000, 2, '1.5 goes up to the even 2'],
    [5, 5_000, 2, '2.5 goes down to the even 2'],
    [7, 5_000, 4, '3.5 goes up to the even 4'],
    [5_000, 1, 0, '0.5 (via 1 bp) goes to 0'],
    [15_000, 1, 2, '1.5 (via 1 bp) goes to 2'],
    [25_000, 1, 2, '2.5 (via 1 bp) goes to 2'],
    [35_000, 1, 4, '3.5 (via 1 bp) goes to 4'],
    [1, 4_999, 0, '0.4999 is just below half'],
    [1, 5_001, 1, '0.5001 is just above half'],
    [4_999, 1, 0, '0.4999 (via 1 bp) is just below half'],
    [5_001, 1, 1, '0.5001 (via 1 bp) is just above half'],
    [24_999, 1, 2, '2.4999 is just below half'],
    [25_001, 1, 3, '2.5001 is just above half, so it does not stop at the even 2'],
    [10_001, 1, 1, '1.0001 rounds to 1'],
    [9_999, 1, 1, '0.9999 rounds to 1'],
    [8_000, 1_500, 1_200, '15 % of 80.00 is exactly 12.00'],
    [999, 3_333, 333, '33.33 % of 9.99 = 332.9667 -> 333'],
  ])('%i minor at %i bp is %i (%s)', (amount, bp, expected) => {
    expect(percentOfHalfEven(amount, bp)).toBe(expected);
  });

  it('gives 0 for a zero amount and for 0 bp', () => {
    expect(percentOfHalfEven(0, 0)).toBe(0);
    expect(percentOfHalfEven(0, 10_000)).toBe(0);
    expect(percentOfHalfEven(123_456, 0)).toBe(0);
    expect(percentOfHalfEven(MAX_AMOUNT_MINOR, 0)).toBe(0);
  });

  it('gives the whole amount at 10000 bp', () => {
    for (const amount of [0, 1, 2, 99, 12_345, MAX_AMOUNT_MINOR, Number.MAX_SAFE_INTEGER]) {
      expect(percentOfHalfEven(amount, 10_000)).toBe(amount);
    }
  });

  it('is exact at MAX_AMOUNT_MINOR where a float product would lose precision', () => {
    // 9_999_999_999_999 * 3_333 = 33_329_999_999_996_667 is far above 2^53.
    expect(percentOfHalfEven(MAX_AMOUNT_MINOR - 1, 3_333)).toBe(3_333_000_000_000);
    expect(percentOfHalfEven(MAX_AMOUNT_MINOR, 1)).toBe(1_000_000_000);
    expect(percentOfHalfEven(MAX_AMOUNT_MINOR, 9_999)).toBe(9_999_000_000_000);
    // 1 bp of 10^13 - 5000 is 999_999_999.5: a tie, to the even 1_000_000_000.
    expect(percentOfHalfEven(MAX_AMOUNT_MINOR - 5_000, 1)).toBe(1_000_000_000);
    // ... and 1 bp of 10^13 - 15000 is 999_999_998.5: a tie, to the even 999_999_998.
    expect(percentOfHalfEven(MAX_AMOUNT_MINOR - 15_000, 1)).toBe(999_999_998);
  });

  it('matches a BigInt half-even reference for any amount up to MAX_AMOUNT_MINOR', () => {
    fc.assert(
      fc.property(amountArb, basisPointsArb, (amount, bp) => {
        expect(percentOfHalfEven(amount, bp)).toBe(Number(referenceHalfEven(BigInt(amount), BigInt(bp))));
      }),
      { numRuns: 2_000 },
    );
  });

  it('matches the reference on exact ties, where half-even differs from half-up', () => {
    // amount * bp = 10000 * k + 5000: the exact value is k + 0.5.
    const tie = fc
      .tuple(fc.bigInt({ min: 0n, max: BigInt(MAX_AMOUNT_MINOR) / 10_000n - 1n }), fc.boolean())
      .map(([k, viaOneBp]) =>
        viaOneBp ? { amount: k * 10_000n + 5_000n, bp: 1n } : { amount: k * 2n + 1n, bp: 5_000n },
      );
    fc.assert(
      fc.property(tie, ({ amount, bp }) => {
        const result = BigInt(percentOfHalfEven(Number(amount), Number(bp)));
        expect(result % 2n).toBe(0n);
        expect(result).toBe(referenceHalfEven(amount, bp));
      }),
      { numRuns: 1_000 },
    );
  });

  it('never moves more than half a unit from the exact value, and never exceeds the amount', () => {
    fc.assert(
      fc.property(amountArb, basisPointsArb, (amount, bp) => {
        const result = BigInt(percentOfHalfEven(amount, bp));
        const exactTimes10000 = BigInt(amount) * BigInt(bp);
        const distance = result * 10_000n - exactTimes10000;
        expect(distance <= 5_000n && distance >= -5_000n).toBe(true);
        expect(result <= BigInt(amount)).toBe(true);
      }),
    );
  });

  it.each([
    ['a negative amount', -1, 100],
    ['a fractional amount', 10.5, 100],
    ['NaN as amount', Number.NaN, 100],
    ['Infinity as amount', Number.POSITIVE_INFINITY, 100],
    ['an amount beyond 2^53', 2 ** 53, 100],
    ['negative basis points', 100, -1],
    ['basis points above 10000', 100, 10_001],
    ['fractional basis points', 100, 12.5],
    ['NaN as basis points', 100, Number.NaN],
  ])('refuses %s with a RangeError', (_what, amount, bp) => {
    expect(() => percentOfHalfEven(amount, bp)).toThrow(RangeError);
  });
});

describe('discountFor', () => {
  const percentage = (basisPoints: number, maxDiscountMinor: number | null = null): DiscountRule => ({
    type: 'percentage',
    basisPoints,
    maxDiscountMinor,
  });

  it('gives a fixed amount in full when the subtotal covers it', () => {
    expect(discountFor({ type: 'fixed_amount', amountMinor: 500 }, cart({ subtotalMinor: 2_000 }))).toBe(500);
  });

  it('never lets a fixed amount exceed the subtotal (shipping is not discounted)', () => {
    expect(
      discountFor(
        { type: 'fixed_amount', amountMinor: 5_000 },
        cart({ subtotalMinor: 1_999, shippingMinor: 900 }),
      ),
    ).toBe(1_999);
  });

  it('gives the rounded percentage of the subtotal', () => {
    expect(discountFor(percentage(1_500, 2_000), cart({ subtotalMinor: 8_000 }))).toBe(1_200);
    expect(discountFor(percentage(1_000), cart({ subtotalMinor: 25 }))).toBe(2); // 2.5 -> 2
    expect(discountFor(percentage(1_000), cart({ subtotalMinor: 35 }))).toBe(4); // 3.5 -> 4
  });

  it('stops a percentage at its maximum', () => {
    expect(discountFor(percentage(1_500, 2_000), cart({ subtotalMinor: 50_000 }))).toBe(2_000);
  });

  it('gives exactly the shipping for free shipping, whatever the subtotal', () => {
    expect(discountFor({ type: 'free_shipping' }, cart({ subtotalMinor: 10_000, shippingMinor: 499 }))).toBe(
      499,
    );
    expect(discountFor({ type: 'free_shipping' }, cart({ subtotalMinor: 10, shippingMinor: 1_500 }))).toBe(
      1_500,
    );
    expect(discountFor({ type: 'free_shipping' }, cart({ shippingMinor: 0 }))).toBe(0);
  });

  it('gives nothing off a zero subtotal except free shipping', () => {
    const empty = cart({ subtotalMinor: 0, shippingMinor: 300 });
    expect(discountFor({ type: 'fixed_amount', amountMinor: 500 }, empty)).toBe(0);
    expect(discountFor(percentage(10_000), empty)).toBe(0);
    expect(discountFor(percentage(5_000, 100), empty)).toBe(0);
    expect(discountFor({ type: 'free_shipping' }, empty)).toBe(300);
  });

  it('property: a fixed amount is min(amount, subtotal)', () => {
    fc.assert(
      fc.property(amountArb, amountArb, amountArb, (amountMinor, subtotalMinor, shippingMinor) => {
        const discount = discountFor({ type: 'fixed_amount', amountMinor }, { subtotalMinor, shippingMinor });
        expect(discount).toBe(Math.min(amountMinor, subtotalMinor));
        expect(discount).toBeLessThanOrEqual(subtotalMinor);
      }),
    );
  });

  it('property: a percentage never exceeds the subtotal nor its maximum', () => {
    fc.assert(
      fc.property(
        amountArb,
        basisPointsArb,
        fc.option(amountArb, { nil: null }),
        (subtotalMinor, basisPoints, maxDiscountMinor) => {
          const discount = discountFor(percentage(basisPoints, maxDiscountMinor), cart({ subtotalMinor }));
          expect(Number.isSafeInteger(discount)).toBe(true);
          expect(discount).toBeGreaterThanOrEqual(0);
          expect(discount).toBeLessThanOrEqual(subtotalMinor);
          if (maxDiscountMinor !== null) expect(discount).toBeLessThanOrEqual(maxDiscountMinor);
          const uncapped = percentOfHalfEven(subtotalMinor, basisPoints);
          expect(discount).toBe(Math.min(uncapped, maxDiscountMinor ?? uncapped));
        },
      ),
    );
  });

  it('property: free shipping equals the shipping amount', () => {
    fc.assert(
      fc.property(amountArb, amountArb, (subtotalMinor, shippingMinor) => {
        expect(discountFor({ type: 'free_shipping' }, { subtotalMinor, shippingMinor })).toBe(shippingMinor);
      }),
    );
  });
});
