/**
 * The points -> coupon policy as the product document states it: 1 point = 1 unit of the currency,
 * at least 100 points in steps of 100, at most 10,000 per conversion and 30,000 per UTC day, valid
 * for a year, codes shaped `70934-AB12CD-500`. Pure functions, no I/O.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODE_ALPHABET } from '../../src/domain/codes.js';
import {
  addMonthsUtc,
  type ConversionPolicy,
  checkCodeFormat,
  checkConversion,
  couponAmountMinor,
  customerTag,
  DEFAULT_CODE_FORMAT,
  DEFAULT_POLICY,
  definesTier,
  formatCouponCode,
  knownTiers,
  maxCouponAmountMinor,
  utcDay,
} from '../../src/domain/points.js';

function policy(overrides: Partial<ConversionPolicy> = {}): ConversionPolicy {
  return { ...DEFAULT_POLICY, ...overrides };
}

/** A random source that hands out the given bytes (repeating the last one) and records the sizes asked. */
function fixedBytes(bytes: number[]) {
  const asked: number[] = [];
  const source = (size: number) => {
    asked.push(size);
    return Uint8Array.from({ length: size }, (_, i) => bytes[Math.min(i, bytes.length - 1)] ?? 0);
  };
  return { source, asked };
}

describe('checkConversion (default policy: min 100, steps of 100, max 10,000, 30,000 a day)', () => {
  const p = DEFAULT_POLICY;

  it('follows the product document defaults', () => {
    expect(p).toMatchObject({
      minorPerPoint: 1,
      minPoints: 100,
      stepPoints: 100,
      maxPointsPerConversion: 10_000,
      dailyLimitPoints: 30_000,
      validityMonths: 12,
      multiplierBp: 10_000,
    });
  });

  it.each([
    [99, 'conversion_below_minimum'],
    [0, 'conversion_below_minimum'],
    [-100, 'conversion_below_minimum'],
    [100, null],
    [150, 'conversion_not_in_steps'],
    [101, 'conversion_not_in_steps'],
    [500, null],
    [10_000, null],
    [10_100, 'conversion_above_maximum'],
    [1_000_000, 'conversion_above_maximum'],
  ] as const)('%i points on a fresh day -> %s', (points, expected) => {
    expect(checkConversion(p, points, 0)).toBe(expected);
  });

  it('refuses non-integer points as below the minimum (never a fractional conversion)', () => {
    expect(checkConversion(p, 100.5, 0)).toBe('conversion_below_minimum');
    expect(checkConversion(p, Number.NaN, 0)).toBe('conversion_below_minimum');
  });

  it('the daily limit is inclusive: 29,900 + 100 reaches 30,000 exactly, + 200 passes it', () => {
    expect(checkConversion(p, 100, 29_900)).toBeNull();
    expect(checkConversion(p, 200, 29_900)).toBe('daily_conversion_limit_exceeded');
    expect(checkConversion(p, 100, 30_000)).toBe('daily_conversion_limit_exceeded');
    expect(checkConversion(p, 10_000, 20_000)).toBeNull();
    expect(checkConversion(p, 10_000, 20_100)).toBe('daily_conversion_limit_exceeded');
  });

  it('a malformed amount is reported as such before the daily limit', () => {
    expect(checkConversion(p, 150, 30_000)).toBe('conversion_not_in_steps');
    expect(checkConversion(p, 10_100, 30_000)).toBe('conversion_above_maximum');
    expect(checkConversion(p, 99, 30_000)).toBe('conversion_below_minimum');
  });

  it('accepts exactly the whole steps from min to max that fit in the day (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 40_000 }),
        fc.integer({ min: 0, max: 30_000 }),
        (pts, today) => {
          const ok = pts >= 100 && pts % 100 === 0 && pts <= 10_000 && today + pts <= 30_000;
          expect(checkConversion(p, pts, today) === null).toBe(ok);
        },
      ),
    );
  });
});

describe('utcDay', () => {
  it('the day changes at 00:00:00.000Z, not a millisecond earlier', () => {
    expect(utcDay(new Date('2026-06-01T23:59:59.999Z'))).toBe('2026-06-01');
    expect(utcDay(new Date('2026-06-02T00:00:00.000Z'))).toBe('2026-06-02');
  });

  it('uses the UTC calendar day of instants written with another offset', () => {
    // 08:30 in Tokyo on June 1st is still May 31st in UTC.
    expect(utcDay(new Date('2026-06-01T08:30:00+09:00'))).toBe('2026-05-31');
    // 20:00 in New York on June 1st is already June 2nd in UTC.
    expect(utcDay(new Date('2026-06-01T20:00:00-04:00'))).toBe('2026-06-02');
    expect(utcDay(new Date('2026-12-31T23:30:00-01:00'))).toBe('2027-01-01');
  });

  it('is YYYY-MM-DD for every instant (property)', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1971-01-01Z'), max: new Date('9999-12-31Z'), noInvalidDate: true }),
        (d) => {
          const day = utcDay(d);
          expect(day).toMatch(/^\d{4}-\d{2}-\d{2}$/);
          expect(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())).toBe(
            Date.parse(`${day}T00:00:00Z`),
          );
        },
      ),
    );
  });
});

describe('definesTier', () => {
  const p = policy({ tierMultipliersBp: { gold: 12_000, silver: 11_000 } });

  it('knows exactly the tiers the program names, case included', () => {
    expect(definesTier(p, 'gold')).toBe(true);
    expect(definesTier(p, 'Gold')).toBe(false);
    expect(definesTier(p, 'platinum')).toBe(false);
    expect(knownTiers(p)).toEqual(['gold', 'silver']);
  });

  it('never takes an Object.prototype member for a tier', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(definesTier(p, name)).toBe(false);
    }
  });
});

describe('maxCouponAmountMinor', () => {
  it('is the largest conversion at the highest tier', () => {
    expect(maxCouponAmountMinor(DEFAULT_POLICY)).toBe(10_000);
    expect(
      maxCouponAmountMinor(policy({ multiplierBp: 15_000, tierMultipliersBp: { gold: 12_000, low: 9_000 } })),
    ).toBe(18_000);
    expect(maxCouponAmountMinor(policy({ tierMultipliersBp: { low: 5_000 } }))).toBe(10_000);
  });
});

describe('couponAmountMinor', () => {
  it('is 1 unit per point by default', () => {
    expect(couponAmountMinor(DEFAULT_POLICY, 100)).toBe(100);
    expect(couponAmountMinor(DEFAULT_POLICY, 500)).toBe(500);
    expect(couponAmountMinor(DEFAULT_POLICY, 10_000)).toBe(10_000);
  });

  it('applies minor_per_point (1 point = 1 dollar is 100 cents)', () => {
    expect(couponAmountMinor(policy({ minorPerPoint: 100 }), 500)).toBe(50_000);
  });

  it('applies the program multiplier (x1.5)', () => {
    expect(couponAmountMinor(policy({ multiplierBp: 15_000 }), 1000)).toBe(1500);
  });

  it('multiplies program and tier multipliers: x1.5 and gold x1.2 give x1.8', () => {
    const p = policy({ multiplierBp: 15_000, tierMultipliersBp: { gold: 12_000 } });
    expect(couponAmountMinor(p, 1000, 'gold')).toBe(1800);
    expect(couponAmountMinor(p, 150, 'gold')).toBe(270);
    expect(couponAmountMinor(p, 100, 'gold')).toBe(180);
    // Without a tier only the program multiplier applies.
    expect(couponAmountMinor(p, 1000)).toBe(1500);
  });

  it('rounds the product down once, never a fraction the points did not earn', () => {
    const p = policy({ multiplierBp: 15_000, tierMultipliersBp: { gold: 12_000, silver: 11_100 } });
    // 101 x 1.5 x 1.2 = 181.8 -> 181
    expect(couponAmountMinor(p, 101, 'gold')).toBe(181);
    // 1 x 1.5 = 1.5 -> 1
    expect(couponAmountMinor(p, 1)).toBe(1);
    // 333 x 1.5 x 1.11 = 554.445 -> 554 (rounding each step first would give 499 x 1.11 = 553 or 500 x 1.11 = 555)
    expect(couponAmountMinor(p, 333, 'silver')).toBe(554);
    // 100 x 1.0001 x 1.0001 = 100.020001 -> 100
    expect(
      couponAmountMinor(policy({ multiplierBp: 10_001, tierMultipliersBp: { t: 10_001 } }), 100, 't'),
    ).toBe(100);
  });

  it('equals floor(points x minor x program x tier) for any inputs (property, exact integer arithmetic)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        (pts, minor, programBp, tierBp) => {
          const p = policy({
            minorPerPoint: minor,
            multiplierBp: programBp,
            tierMultipliersBp: { x: tierBp },
          });
          const exact = BigInt(pts) * BigInt(minor) * BigInt(programBp) * BigInt(tierBp);
          const amount = couponAmountMinor(p, pts, 'x');
          expect(BigInt(amount) * 100_000_000n <= exact).toBe(true);
          expect((BigInt(amount) + 1n) * 100_000_000n > exact).toBe(true);
        },
      ),
    );
  });

  it('an unknown tier counts as x1', () => {
    const p = policy({ multiplierBp: 15_000, tierMultipliersBp: { gold: 12_000 } });
    expect(couponAmountMinor(p, 1000, 'bronze')).toBe(1500);
    expect(couponAmountMinor(p, 1000, 'GOLD')).toBe(1500);
    expect(couponAmountMinor(DEFAULT_POLICY, 1000, 'gold')).toBe(1000);
  });

  // Tier names come from the caller (checkout body or the merchant's customer token) and the route
  // accepts any [A-Za-z0-9_-]+ name, so names of Object.prototype members are tiers like any other.
  it.each(['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'])(
    'a tier named %s that the program does not define counts as x1',
    (tier) => {
      const p = policy({ multiplierBp: 15_000, tierMultipliersBp: { gold: 12_000 } });
      expect(couponAmountMinor(p, 1000, tier)).toBe(1500);
    },
  );

  it('refuses an amount above the largest amount accepted anywhere', () => {
    expect(() =>
      couponAmountMinor(policy({ minorPerPoint: 1_000_000, multiplierBp: 1_000_000 }), 1_000_000_000),
    ).toThrow(RangeError);
  });
});

describe('addMonthsUtc', () => {
  const add = (iso: string, months: number) => addMonthsUtc(new Date(iso), months).toISOString();

  it('Jan 31 + 1 month is the last day of February (leap and common years)', () => {
    expect(add('2026-01-31T10:00:00.000Z', 1)).toBe('2026-02-28T10:00:00.000Z');
    expect(add('2028-01-31T10:00:00.000Z', 1)).toBe('2028-02-29T10:00:00.000Z');
  });

  it('Feb 29 2028 + 12 months is Feb 28 2029; + 48 months is Feb 29 2032', () => {
    expect(add('2028-02-29T00:00:00.000Z', 12)).toBe('2029-02-28T00:00:00.000Z');
    expect(add('2028-02-29T00:00:00.000Z', 48)).toBe('2032-02-29T00:00:00.000Z');
  });

  it('ordinary dates move by calendar months, across year ends', () => {
    expect(add('2026-06-01T12:00:00.000Z', 12)).toBe('2027-06-01T12:00:00.000Z');
    expect(add('2026-03-15T08:00:00.000Z', 1)).toBe('2026-04-15T08:00:00.000Z');
    expect(add('2026-11-30T00:00:00.000Z', 3)).toBe('2027-02-28T00:00:00.000Z');
    expect(add('2026-08-31T00:00:00.000Z', 1)).toBe('2026-09-30T00:00:00.000Z');
    expect(add('2026-12-31T00:00:00.000Z', 1)).toBe('2027-01-31T00:00:00.000Z');
    expect(add('2026-05-31T00:00:00.000Z', 120)).toBe('2036-05-31T00:00:00.000Z');
  });

  it('keeps the time of day to the millisecond', () => {
    expect(add('2026-01-15T23:59:59.999Z', 12)).toBe('2027-01-15T23:59:59.999Z');
    expect(add('2026-01-31T00:00:00.001Z', 1)).toBe('2026-02-28T00:00:00.001Z');
  });

  it('does not change its argument', () => {
    const from = new Date('2026-01-31T10:00:00Z');
    addMonthsUtc(from, 1);
    expect(from.toISOString()).toBe('2026-01-31T10:00:00.000Z');
  });

  it('lands in the right month on the same day or the month end, same time (property)', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01Z'), max: new Date('2200-01-01Z'), noInvalidDate: true }),
        fc.integer({ min: 1, max: 120 }),
        (from, months) => {
          const to = addMonthsUtc(from, months);
          const monthIndex = from.getUTCFullYear() * 12 + from.getUTCMonth() + months;
          expect(to.getUTCFullYear() * 12 + to.getUTCMonth()).toBe(monthIndex);
          const lastDay = new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() + 1, 0)).getUTCDate();
          expect(to.getUTCDate()).toBe(Math.min(from.getUTCDate(), lastDay));
          expect(to.getTime() % 86_400_000).toBe(from.getTime() % 86_400_000);
        },
      ),
    );
  });
});

describe('coupon code format', () => {
  it('the default format renders like 70934-XXXXXX-500', () => {
    const { source, asked } = fixedBytes([0, 1, 2, 3, 4, 31]);
    const code = formatCouponCode(
      DEFAULT_CODE_FORMAT,
      { customerId: 'cus_70934', points: 500, amountMinor: 500 },
      source,
    );
    expect(code).toBe(
      `70934-${CODE_ALPHABET[0]}${CODE_ALPHABET[1]}${CODE_ALPHABET[2]}${CODE_ALPHABET[3]}${CODE_ALPHABET[4]}${CODE_ALPHABET[31]}-500`,
    );
    expect(code).toBe('70934-23456Z-500');
    expect(asked).toEqual([6]);
    expect(DEFAULT_CODE_FORMAT).toBe('{customer5}-{random6}-{amount}');
  });

  it('the default format shows the discount amount, not the points: 1,000 points at x1.5 read -1500', () => {
    const { source } = fixedBytes([0]);
    expect(
      formatCouponCode(
        DEFAULT_CODE_FORMAT,
        { customerId: 'cus_70934', points: 1000, amountMinor: 1500 },
        source,
      ),
    ).toBe('70934-222222-1500');
    expect(
      formatCouponCode(
        '{customer5}-{random6}-{points}',
        { customerId: 'cus_70934', points: 1000, amountMinor: 1500 },
        source,
      ),
    ).toBe('70934-222222-1000');
  });

  it('takes the last five digits of a long customer id', () => {
    const { source } = fixedBytes([9]);
    expect(
      formatCouponCode(
        DEFAULT_CODE_FORMAT,
        { customerId: '1234570934', points: 10_000, amountMinor: 10_000 },
        source,
      ),
    ).toBe('70934-BBBBBB-10000');
  });

  it('the random part uses only the code alphabet, for every byte value (property)', () => {
    const alphabet = new Set(CODE_ALPHABET);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.integer({ min: 6, max: 20 }),
        fc.integer({ min: 1, max: 1000 }).map((n) => n * 100),
        (bytes, n, pts) => {
          const code = formatCouponCode(
            `{customer5}-{random${n}}-{points}`,
            { customerId: 'cus_70934', points: pts, amountMinor: pts * 2 },
            (size) => bytes.slice(0, size),
          );
          const [tag, random, points, ...rest] = code.split('-');
          expect(rest).toEqual([]);
          expect(tag).toBe('70934');
          expect(points).toBe(String(pts));
          expect(random).toHaveLength(n);
          for (const ch of random ?? '') expect(alphabet.has(ch)).toBe(true);
        },
      ),
    );
  });

  it('never uses the look-alike characters 0, 1, O or I in the random part', () => {
    for (let b = 0; b < 256; b++) {
      const code = formatCouponCode('{random6}', { customerId: 'x', points: 100, amountMinor: 100 }, (size) =>
        new Uint8Array(size).fill(b),
      );
      expect(code).toMatch(/^[2-9A-HJ-NP-Z]{6}$/);
    }
  });

  it('renders every placeholder of a custom format, and literal text as is', () => {
    const { source, asked } = fixedBytes([0]);
    expect(
      formatCouponCode(
        'PT_{points}.{random8}.{customer5}-{amount}',
        { customerId: 'cus_42', points: 300, amountMinor: 450 },
        source,
      ),
    ).toBe('PT_300.22222222.00042-450');
    expect(asked).toEqual([8]);
  });

  describe('customerTag', () => {
    it.each([
      ['cus_70934', '70934'],
      ['1234570934', '70934'],
      ['cus_7', '00007'],
      ['42', '00042'],
      ['a1b2c3', '00123'],
      ['00000', '00000'],
      ['user-2024-x', '02024'],
    ])('%s -> %s (last five digits, left-padded with 0)', (id, tag) => {
      expect(customerTag(id)).toBe(tag);
    });

    it.each([
      ['alice', 'ALICE'],
      ['cus_abcdefgh', 'DEFGH'],
      ['bob', '00BOB'],
      ['x', '0000X'],
      ['___', '0000X'],
      ['ユーザー', '0000X'],
    ])('%s (no digits) -> %s', (id, tag) => {
      expect(customerTag(id)).toBe(tag);
    });

    it('is always five characters a code can hold (property)', () => {
      fc.assert(
        fc.property(fc.string({ minLength: 1, maxLength: 128 }), (id) => {
          expect(customerTag(id)).toMatch(/^[A-Z0-9]{5}$/);
        }),
      );
    });
  });

  describe('checkCodeFormat', () => {
    it.each([
      DEFAULT_CODE_FORMAT,
      '{random6}',
      '{random20}',
      'PT-{random8}-{points}',
      '{customer5}-{random6}-{points}',
      '{points}-{random6}-{amount}',
      'pt_{customer5}.{random10} {points}',
      '{random6}{random6}',
    ])('accepts %s', (format) => {
      expect(checkCodeFormat(format)).toBeNull();
    });

    it.each([
      ['{customer5}-{points}', 'no_random_part'],
      ['FIXED-CODE', 'no_random_part'],
      ['', 'no_random_part'],
      ['{customer5}-{random}-{points}', 'no_random_part'],
      ['{customer5}-{random5}-{points}', 'random_part_too_short'],
      ['{random0}', 'random_part_too_short'],
      ['{random6}-{random3}', 'random_part_too_short'],
      ['{random21}', 'random_part_too_short'],
      ['{customer5}/{random6}-{points}', 'invalid_characters'],
      ['{random6}-{unknown}', 'invalid_characters'],
      ['{random6}-{points', 'invalid_characters'],
      ['{random6}<script>', 'invalid_characters'],
      ['{random6}-ü', 'invalid_characters'],
      [`{random6}${'A'.repeat(58)}`, 'too_long'],
    ])('refuses %s: %s', (format, problem) => {
      expect(checkCodeFormat(format)).toBe(problem);
    });

    it('counts {points} and {amount} at the widest the program can issue', () => {
      const format = `{random6}${'A'.repeat(40)}{amount}`;
      expect(checkCodeFormat(format, { maxPoints: 10_000, maxAmountMinor: 18_000 })).toBeNull();
      expect(checkCodeFormat(format, { maxPoints: 10_000, maxAmountMinor: 10 ** 18 })).toBe('too_long');
      expect(
        checkCodeFormat(`{random6}${'A'.repeat(40)}{points}`, { maxPoints: 10 ** 18, maxAmountMinor: 1 }),
      ).toBe('too_long');
    });

    it('accepts a format of exactly 64 characters', () => {
      expect(checkCodeFormat(`{random6}${'A'.repeat(55)}`)).toBeNull();
    });
  });
});
