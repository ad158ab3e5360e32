/**
 * The features and shipped rules against leaks and rings, through the real HTTP app on every database
 * backend: a partner's redemptions in the hour are counted against its contract cap (held from a
 * tenth on); a referral code's fresh accounts are counted (the second fresh one held, an established
 * customer not); the accounts seen on an address are counted; and an established customer who moves
 * into a flat is not linked to the former tenant, while a new account shipping there is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionOf, redeem } from '../risk/helpers.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const DAY = 86_400_000;
const ageDays = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();

const address = (line1: string) => ({
  line1,
  city: 'Portland',
  region: 'OR',
  postal_code: '97201',
  country: 'US',
});

describe.each(backends.map((b) => [b.name, b] as const))('leak and ring features on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend, { clock: new TestClock(NOW) });
  });
  afterAll(async () => t?.close());

  it("holds a partner's redemptions once a tenth of its cap went within the hour", async () => {
    const { campaignId } = await campaignWithCode(t, {});
    const partner = unique('acme').toLowerCase();
    const codes = [1, 2, 3, 4].map(() => unique('ACME'));
    const imported = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
      body: { codes: codes.map((code) => ({ code, max_uses: 1, partner })) },
    });
    expect(imported.statusCode).toBe(201);
    const capped = await t.call('PUT', `/v1/campaigns/${campaignId}/partners/${partner}`, {
      body: { cap: 20, reason: 'contract' },
    });
    expect(capped.statusCode).toBe(200);
    const seen = [];
    for (const code of codes.slice(0, 3)) {
      const r = await redeem(t, code, unique('cus_ptn'), { context: { account_created_at: ageDays(400) } });
      expect(r.statusCode).toBe(201);
      const d = decisionOf(r);
      seen.push([d.features['partner_cap'], d.features['partner_redemptions_1h'], d.action]);
    }
    expect(seen).toEqual([
      [20, 0, 'allow'],
      [20, 1, 'allow'],
      [20, 2, 'review'],
    ]);
  });

  it('holds the second fresh account on a referral code, not an established customer', async () => {
    const { code } = await campaignWithCode(t, {}, { max_uses: 20 });
    const fresh = { account_created_at: ageDays(0.05) };
    const first = await redeem(t, code, unique('cus_ref'), { context: fresh });
    const established = await redeem(t, code, unique('cus_ref'), {
      context: { account_created_at: ageDays(300) },
    });
    const second = await redeem(t, code, unique('cus_ref'), { context: fresh });
    expect([first, established, second].map((r) => r.statusCode)).toEqual([201, 201, 201]);
    expect(decisionOf(first).features['code_new_accounts_24h']).toBe(0);
    expect(decisionOf(established).action).toBe('allow');
    expect(decisionOf(second).features['code_new_accounts_24h']).toBe(1);
    expect(decisionOf(second).because).toContain('rule_default_referral_ring');
    expect(second.json().review_status).toBe('pending');
  });

  it('counts the accounts seen on a client address', async () => {
    const { code } = await campaignWithCode(t, {});
    const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const counts = [];
    for (let i = 0; i < 3; i++) {
      const r = await redeem(t, code, unique('cus_nat'), { context: { ip } });
      counts.push(decisionOf(r).features['ip_customers_1h']);
    }
    expect(counts).toEqual([0, 1, 2]);
  });

  it('does not link a customer who moved in to the former tenant; a new account shipping there is linked', async () => {
    const { code } = await campaignWithCode(t, { per_customer_cap: 1, per_person_cap: 1 } as Record<
      string,
      unknown
    >);
    const flat = address(`${Math.floor(Math.random() * 1e6)} Alder Street`);
    const tenant = await redeem(t, code, unique('cus_tenant'), {
      context: { shipping_address: flat, account_created_at: ageDays(900) },
    });
    const mover = await redeem(t, code, unique('cus_mover'), {
      context: { shipping_address: flat, account_created_at: ageDays(700) },
    });
    const fresh = await redeem(t, code, unique('cus_fresh'), {
      context: { shipping_address: flat, account_created_at: ageDays(1) },
    });
    expect([tenant.statusCode, mover.statusCode, fresh.statusCode]).toEqual([201, 201, 422]);
    expect(fresh.json().reason).toBe('person_cap_reached');
  });
});
