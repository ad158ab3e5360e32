/** The account-takeover features, computed from a customer's history: pure, no database. */
import { describe, expect, it } from 'vitest';
import { parseIpAddress } from '../../src/domain/identity/index.js';
import { FEATURES } from '../../src/domain/risk.js';
import { addressPrefix, hourShare, type TakeoverFacts, takeoverFeatures } from '../../src/domain/takeover.js';
import { DEFAULT_PACK } from '../../src/risk/default-pack.js';
import { compileRule } from '../../src/risk/rule-language.js';
import { sightingRows } from '../../src/store/takeover.js';

const NOW = new Date('2026-06-01T20:30:00Z');

function facts(overrides: Partial<TakeoverFacts> = {}): TakeoverFacts {
  return {
    deviceKnown: true,
    prefixKnown: true,
    paymentKnown: null,
    hours: Array(24).fill(0),
    lastConversionAt: null,
    balance: 4_000,
    convertedToday: 0,
    ...overrides,
  };
}

function hours(at: Record<number, number>): number[] {
  return Array.from({ length: 24 }, (_, h) => at[h] ?? 0);
}

describe('takeover features', () => {
  it('flags what is new for the customer and leaves out what the request did not carry', () => {
    const f = takeoverFeatures(facts({ deviceKnown: false, prefixKnown: true, paymentKnown: null }), {
      now: NOW,
    });
    expect(f.customer_device_new).toBe(1);
    expect(f.customer_prefix_new).toBe(0);
    expect(f).not.toHaveProperty('customer_payment_new');
    expect(takeoverFeatures(facts({ paymentKnown: false }), { now: NOW }).customer_payment_new).toBe(1);
  });

  it('gives the share of the balance a conversion takes, capped at the whole balance', () => {
    expect(takeoverFeatures(facts(), { now: NOW, points: 1_000 }).conversion_balance_share).toBe(0.25);
    expect(takeoverFeatures(facts(), { now: NOW, points: 4_000 }).conversion_balance_share).toBe(1);
    expect(takeoverFeatures(facts({ balance: 0 }), { now: NOW, points: 100 })).not.toHaveProperty(
      'conversion_balance_share',
    );
    expect(takeoverFeatures(facts(), { now: NOW })).not.toHaveProperty('conversion_balance_share');
  });

  it('measures the time since the last conversion and the age of a loyalty coupon', () => {
    const f = takeoverFeatures(facts({ lastConversionAt: new Date('2026-06-01T18:00:00Z') }), {
      now: NOW,
      couponCreatedAt: new Date('2026-06-01T20:27:00Z'),
    });
    expect(f.hours_since_last_conversion).toBe(2.5);
    expect(f.loyalty_coupon_age_minutes).toBe(3);
    expect(takeoverFeatures(facts(), { now: NOW })).not.toHaveProperty('hours_since_last_conversion');
  });

  it("reads the hour of day against the customer's own hours, one hour either side", () => {
    // 20:30 UTC: hours 19, 20 and 21 count.
    expect(hourShare(hours({ 19: 2, 20: 3, 21: 1, 9: 4 }), NOW)).toBe(0.6);
    expect(hourShare(hours({ 9: 10 }), NOW)).toBe(0);
    // Around midnight the neighbours wrap.
    expect(hourShare(hours({ 23: 5, 0: 5 }), new Date('2026-06-01T00:10:00Z'))).toBe(1);
    // Too little history says nothing.
    expect(hourShare(hours({ 20: 4 }), NOW)).toBeNull();
    const f = takeoverFeatures(facts({ hours: hours({ 9: 6 }) }), { now: NOW });
    expect(f.customer_hour_share).toBe(0);
    expect(f.customer_history_actions).toBe(6);
  });

  it('groups addresses by their IPv4 /24 and IPv6 /48', () => {
    const prefix = (ip: string) =>
      addressPrefix(parseIpAddress(ip) as NonNullable<ReturnType<typeof parseIpAddress>>);
    expect(prefix('203.0.113.7')).toBe('203.0.113.0/24');
    expect(prefix('203.0.113.250')).toBe('203.0.113.0/24');
    expect(prefix('203.0.114.7')).toBe('203.0.114.0/24');
    expect(prefix('2001:db8:abcd:12::1')).toBe('2001:db8:abcd::/48');
    expect(prefix('2001:db8:abcd:ffff:1:2:3:4')).toBe('2001:db8:abcd::/48');
    expect(prefix('::ffff:198.51.100.9')).toBe('198.51.100.0/24');
  });
});

describe('history writes', () => {
  it('merges the sightings of one batch into one row per customer, kind and value', () => {
    const at = new Date('2026-06-01T08:15:00Z');
    const later = new Date('2026-06-01T08:45:00Z');
    const rows = sightingRows([
      { customerId: 'c1', device: 'd1', prefix: 'p1', payment: null, verified: false, at },
      { customerId: 'c1', device: 'd1', prefix: 'p2', payment: 'k1', verified: true, at: later },
    ]);
    const d1 = rows.find((r) => r.kind === 'device');
    expect(d1).toMatchObject({ uses: 2, first_at: at.toISOString(), last_at: later.toISOString() });
    expect(d1?.verified_at).toBe(later.toISOString());
    expect(rows.filter((r) => r.kind === 'prefix')).toHaveLength(2);
    expect(rows.find((r) => r.kind === 'hour')).toMatchObject({ hash: '08', uses: 2, verified_at: null });
  });
});

describe('rules over the takeover features', () => {
  it('are declared to the rule language and type-checked', () => {
    for (const name of ['customer_device_new', 'conversion_balance_share', 'loyalty_coupon_age_minutes']) {
      expect(FEATURES.some((f) => f.name === name)).toBe(true);
    }
    expect(
      compileRule('features.customer_device_new == 1 && features.conversion_balance_share >= 0.5').ok,
    ).toBe(true);
    const wrong = compileRule("features.customer_device_new == 'yes'");
    expect(wrong.ok).toBe(false);
    expect(compileRule('features.customer_device_is_new == 1').ok).toBe(false);
    expect(compileRule('loyalty.points >= 1000 && loyalty.balance > 0').ok).toBe(true);
  });

  it('ship in the default pack, every one compiling', () => {
    const ato = DEFAULT_PACK.filter((r) => r.id.startsWith('rule_default_ato_'));
    expect(ato.length).toBeGreaterThanOrEqual(3);
    for (const r of ato) expect(compileRule(r.expression).ok, r.id).toBe(true);
  });
});
