/**
 * Account takeover against loyalty points, with the request context the merchant's backend forwards:
 * thieves holding members' sessions drain the balance into coupons and spend them at once, in varied
 * shapes (all at once, in pieces, after a look at the wallet; from a data centre or a home proxy), and
 * members convert their points the way members do (usual phone; a new phone at home; their own phone
 * on a hotel network; now and then a new phone away from home, which earns a challenge they pass).
 * Every parameter is drawn from a seeded range.
 */
import type { AttemptResult, ScenarioContext } from './context.js';
import type { Shopper } from './fakes.js';
import type { Rng } from './prng.js';
import { cartOf, honestCheckout, type Scenario } from './scenario.js';

const granted = (r: AttemptResult) => r.record.outcome === 'allowed' || r.record.outcome === 'held';

/** The context of a conversion, as a merchant's backend forwards it. */
function contextOf(s: Shopper): Record<string, unknown> {
  return {
    ip: s.ip,
    ...(s.deviceId === undefined ? {} : { device_id: s.deviceId }),
    user_agent: s.userAgent,
    payment_fingerprint: s.card,
  };
}

/** Another host in the same /24: the member's home router hands out a new address now and then. */
function sameNetwork(rng: Rng, ip: string): string {
  const parts = ip.split('.');
  return `${parts.slice(0, 3).join('.')}.${rng.int(1, 254)}`;
}

function convert(
  ctx: ScenarioContext,
  s: Shopper,
  programId: string,
  points: number,
  key: string,
  options: Parameters<ScenarioContext['attempt']>[3],
): Promise<AttemptResult> {
  return ctx.attempt(
    'convert',
    s.customerId,
    {
      method: 'POST',
      path: `/v1/customers/${encodeURIComponent(s.customerId)}/conversions`,
      body: { program_id: programId, points, context: contextOf(s) },
      headers: { 'idempotency-key': `${ctx.sim.settings.tag}-${key}` },
    },
    options,
  );
}

/** A member's history: 1–3 orders from home, on their own phone and card (setup, not attempts). */
async function history(ctx: ScenarioContext, s: Shopper, code: string, orders: number): Promise<void> {
  for (let k = 1; k <= orders; k++) {
    await ctx.sim.http.request('POST', '/v1/redemptions', {
      bucket: 'setup',
      body: ctx.checkoutBody(s, code, { subtotal: 3_000 + k * 700 }, `${s.customerId}-h${k}`),
      headers: { 'idempotency-key': `${ctx.sim.settings.tag}-${s.customerId}-h${k}` },
    });
  }
}

/** An order code members use often (the history), uncapped per customer. */
async function memberSetup(ctx: ScenarioContext, name: string): Promise<{ programId: string; code: string }> {
  const programId = (await ctx.program({ name: `${name} points (simulated)`, minor_per_point: 1 })).id;
  const campaign = await ctx.campaign({
    name: `${name} member orders (simulated)`,
    discount: { type: 'fixed_amount', amount_minor: 100 },
  });
  const code = `${ctx.codeTag}${name.toUpperCase().replace(/[^A-Z]/g, '')}ORD`;
  await ctx.addCode(campaign, { code });
  return { programId, code };
}

type DrainShape = 'all-at-once' | 'in-pieces' | 'wallet-first';

export const takeoverDrain: Scenario = {
  name: 'takeover-drain',
  label: 'abuse',
  short: 'tkd',
  summary:
    "Thieves in members' sessions, forwarding their own device, address and card: they drain the points balance into coupons (all at once, in 30–45 % pieces, or after reading the wallet) and spend each coupon within seconds",
  models: 'use case 6 (account takeover redemption), with the request context',
  prepare(ctx) {
    let programId = '';
    let orderCode = '';
    const victims = Array.from({ length: ctx.scaled(ctx.rng.int(10, 16)) }, (_, i) => {
      const rng = ctx.rng.fork(`v${i}`);
      const fake = ctx.fake.fork(`v${i}`);
      const member = fake.shopper('residential', {
        accountAgeSeconds: rng.int(180 * 86_400, 6 * 365 * 86_400),
      });
      const thief: Shopper = {
        ...member,
        ip: fake.ip(rng.chance(0.6) ? 'datacenter' : 'residential'),
        deviceId: fake.deviceId(),
        // Some copy the member's browser string.
        userAgent: rng.chance(0.3) ? member.userAgent : fake.userAgent(),
        address: fake.address(),
        card: fake.card(),
      };
      const shape = rng.weighted({ 'all-at-once': 5, 'in-pieces': 3, 'wallet-first': 2 }) as DrainShape;
      return {
        id: ctx.actor(`drain-${ctx.sim.settings.tag}-${i}`),
        rng,
        member,
        thief,
        shape,
        orders: rng.int(1, 3),
        balance: rng.int(20, 160) * 100,
        startMs: rng.real(0.1, 0.7) * ctx.durationMs,
        spendAfterMs: [rng.int(300, 1_500), rng.int(2_000, 8_000)] as const,
      };
    });
    return {
      planned: victims.length * 4,
      async setup() {
        ({ programId, code: orderCode } = await memberSetup(ctx, 'Drain'));
        await Promise.all(
          victims.map(async (v) => {
            await ctx.setupCredit(v.member.customerId, v.balance, `${v.member.customerId}-earned`);
            await history(ctx, v.member, orderCode, v.orders);
          }),
        );
      },
      async run() {
        await Promise.all(
          victims.map(async (v) => {
            await ctx.at(v.startMs);
            const customer = v.member.customerId;
            if (v.shape === 'wallet-first') {
              // A first look at what the account holds (recorded with its context; not an attempt).
              await ctx.sim.http.request('GET', `/v1/customers/${encodeURIComponent(customer)}/coupons`, {
                bucket: ctx.name,
                headers: {
                  'promoguard-client-ip': v.thief.ip,
                  'promoguard-device-id': v.thief.deviceId ?? '',
                  'promoguard-user-agent': v.thief.userAgent,
                },
              });
              await ctx.sleep(ctx.pace(v.rng.int(500, 3_000)));
            }
            let left = v.balance;
            for (let k = 1; k <= 4 && left >= 100; k++) {
              const share = v.shape === 'in-pieces' ? v.rng.real(0.3, 0.45) : 1;
              const points = Math.max(100, Math.min(10_000, Math.floor((left * share) / 100) * 100));
              // The money counts where it is decided: a stopped conversion protects the coupon's worth; one
              // that goes through hands the stake to the redemption that cashes it.
              const c = await convert(ctx, v.thief, programId, points, `${customer}-drain-${k}`, {
                actor: v.id,
                valueMinor: points,
                valueMinorIfAllowed: 0,
                passesStepUp: false,
              });
              if (!granted(c)) break;
              left -= points;
              const coupon = (c.body['coupon'] ?? {}) as { code?: string; amount_minor?: number };
              if (!coupon.code) break;
              const amount = coupon.amount_minor ?? points;
              await ctx.sleep(ctx.pace(v.rng.int(...v.spendAfterMs)));
              await ctx.redeem(
                v.thief,
                coupon.code,
                cartOf(v.rng, amount + 2_000, amount + 20_000),
                `${v.id}-${k}`,
                {
                  actor: v.id,
                  valueMinor: amount,
                  passesStepUp: false,
                },
              );
            }
          }),
        );
      },
    };
  },
};

type MemberHabit = 'usual-device' | 'new-phone-home' | 'own-phone-away' | 'new-phone-away';

export const memberConversions: Scenario = {
  name: 'member-conversions',
  label: 'honest',
  short: 'mcv',
  summary:
    'Members with order history convert 20–100 % of their points and spend the coupon at their next checkout: mostly from their usual phone, some from a new phone at home, their own phone on a hotel network, or (a few) a new phone away from home',
  models: 'the loyalty program of the product document, with the request context',
  prepare(ctx) {
    let programId = '';
    let orderCode = '';
    const members = Array.from({ length: ctx.scaled(ctx.rng.int(28, 40)) }, (_, i) => {
      const rng = ctx.rng.fork(`m${i}`);
      const fake = ctx.fake.fork(`m${i}`);
      const member = fake.shopper('residential', {
        accountAgeSeconds: rng.int(60 * 86_400, 6 * 365 * 86_400),
      });
      const habit = rng.weighted({
        'usual-device': 80,
        'new-phone-home': 9,
        'own-phone-away': 8,
        'new-phone-away': 3,
      }) as MemberHabit;
      const now: Shopper = {
        ...member,
        ip:
          habit === 'own-phone-away' || habit === 'new-phone-away'
            ? fake.ip('residential')
            : sameNetwork(rng, member.ip),
        deviceId:
          habit === 'new-phone-home' || habit === 'new-phone-away' ? fake.deviceId() : member.deviceId,
      };
      ctx.actor(member.customerId);
      return {
        rng,
        member,
        now,
        orders: rng.int(1, 3),
        balance: rng.int(5, 120) * 100,
        share: rng.real(0.2, 1),
        startMs: rng.real(0.05, 0.75) * ctx.durationMs,
      };
    });
    return {
      planned: members.length * 3,
      async setup() {
        ({ programId, code: orderCode } = await memberSetup(ctx, 'Member'));
        await Promise.all(
          members.map(async (m) => {
            await ctx.setupCredit(m.member.customerId, m.balance, `${m.member.customerId}-earned`);
            await history(ctx, m.member, orderCode, m.orders);
          }),
        );
      },
      async run() {
        await Promise.all(
          members.map(async (m) => {
            await ctx.at(m.startMs);
            const id = m.member.customerId;
            const points = Math.min(10_000, Math.max(100, Math.floor((m.balance * m.share) / 100) * 100));
            const c = await ctx.patiently(() =>
              convert(ctx, m.now, programId, points, `${id}-convert`, {
                valueMinor: points,
                passesStepUp: true,
              }),
            );
            const coupon = (c.body['coupon'] ?? {}) as { code?: string; amount_minor?: number };
            if (!granted(c) || !coupon.code) return;
            await ctx.sleep(ctx.pace(m.rng.int(2_000, 8_000)));
            const amount = coupon.amount_minor ?? points;
            await honestCheckout(ctx, m.now, {
              rng: m.rng,
              code: coupon.code,
              cart: cartOf(m.rng, amount + 1_000, amount + 15_000),
              orderId: `${id}-1`,
              expectedMinor: amount,
            });
          }),
        );
      },
    };
  },
};

export const TAKEOVER_HONEST_SCENARIOS: Scenario[] = [memberConversions];
export const TAKEOVER_ABUSE_SCENARIOS: Scenario[] = [takeoverDrain];
