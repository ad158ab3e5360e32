/**
 * Honest traffic, including the hard cases a defense must not hurt: shared addresses (households,
 * offices, carrier and campus NAT), a burst of genuinely new customers, mistyped codes, people who move
 * or change card, loyal customers spending points. Every honest customer is entitled to what they come
 * for; anything that keeps it from them, or makes them jump through a hoop, shows as harm.
 */
import { carrierEgressIp, type Shopper } from './fakes.js';
import type { Rng } from './prng.js';
import { cartOf, honestCheckout, percentOff, type Scenario, spread, typoOf } from './scenario.js';

/** How many codes a customer mistypes before getting it right (most: none). */
function typosFor(rng: Rng, code: string, p: number): string[] {
  if (!rng.chance(p)) return [];
  const n = Number(rng.weighted({ '1': 70, '2': 22, '3': 8 }));
  return Array.from({ length: n }, () => typoOf(rng, code));
}

interface Planned {
  rng: Rng;
  s: Shopper;
  startMs: number;
}

export const regularCustomers: Scenario = {
  name: 'regular-customers',
  label: 'honest',
  short: 'reg',
  summary:
    'Everyday customers, each on their own connection: a public 10% code or a free-shipping code; some mistype once',
  models: 'baseline honest traffic',
  prepare(ctx) {
    const spring = `${ctx.codeTag}SPRING10`;
    const ship = `${ctx.codeTag}SHIPFREE`;
    const n = ctx.scaled(90);
    const actors = spread(ctx.rng, n, 0, 0.8 * ctx.durationMs).map((startMs, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const s = ctx.fake.shopper('residential');
      ctx.actor(s.customerId);
      const free = rng.chance(0.2);
      const cart = free ? cartOf(rng, 2000, 9000, 599) : cartOf(rng, 3500, 25000);
      const code = free ? ship : spring;
      const expected = free ? 599 : percentOff(cart.subtotal, 1000, 2000);
      return { rng, s, startMs, code, cart, expected, typos: typosFor(rng, code, 0.12) };
    });
    return {
      planned: Math.round(n * 2.2),
      async setup() {
        const a = await ctx.campaign({
          name: 'Spring 10% (simulated)',
          discount: { type: 'percentage', basis_points: 1000, max_discount_minor: 2000 },
          per_customer_cap: 1,
          min_order_minor: 3000,
        });
        await ctx.addCode(a, { code: spring });
        const b = await ctx.campaign({
          name: 'Free shipping (simulated)',
          discount: { type: 'free_shipping' },
          per_customer_cap: 1,
        });
        await ctx.addCode(b, { code: ship });
      },
      async run() {
        await Promise.all(
          actors.map(async (a) => {
            await ctx.at(a.startMs);
            await honestCheckout(ctx, a.s, {
              rng: a.rng,
              code: a.code,
              cart: a.cart,
              orderId: `${a.s.customerId}-1`,
              expectedMinor: a.expected,
              typos: a.typos,
            });
          }),
        );
      },
    };
  },
};

export const householdsOffices: Scenario = {
  name: 'households-offices',
  label: 'honest',
  short: 'hh',
  summary:
    'Households of 2-5 behind one home connection (shared address, often a family card, sometimes a tablet), offices of 8-16 behind one IP shipping to the office, and a parcel locker many strangers ship to',
  models: 'hard case: many honest customers behind one IP and one address',
  prepare(ctx) {
    const code = `${ctx.codeTag}NEWS5`;
    const actors: (Planned & { typos: string[] })[] = [];
    const D = ctx.durationMs;
    // Shares drawn per run from ranges, so a defense tuned to one mix of households is not rewarded.
    const cardShare = ctx.rng.real(0.35, 0.65);
    const tabletShare = ctx.rng.real(0.2, 0.45);
    const officeAddressShare = ctx.rng.real(0.5, 0.9);
    for (let h = 0; h < ctx.scaled(18); h++) {
      const hr = ctx.rng.fork(`house${h}`);
      const ip = ctx.fake.ip('residential');
      const address = ctx.fake.address();
      const familyCard = hr.chance(cardShare) ? ctx.fake.card() : null;
      const tablet = hr.chance(tabletShare) ? ctx.fake.deviceId() : null;
      const size = Number(hr.weighted({ '2': 40, '3': 30, '4': 22, '5': 8 }));
      for (let m = 0; m < size; m++) {
        const rng = hr.fork(`m${m}`);
        const s = ctx.fake.shopper('residential', {
          ip,
          address,
          ...(familyCard && rng.chance(0.7) ? { card: familyCard } : {}),
          ...(tablet && rng.chance(0.5) ? { deviceId: tablet } : {}),
        });
        ctx.actor(s.customerId);
        actors.push({ rng, s, startMs: rng.real(0, 0.8 * D), typos: typosFor(rng, code, 0.1) });
      }
    }
    for (let o = 0; o < ctx.scaled(2); o++) {
      const or = ctx.rng.fork(`office${o}`);
      const ip = ctx.fake.ip('office');
      const officeAddress = ctx.fake.address();
      // Lunch break: the office's orders come within a fifth of the span.
      const from = or.real(0.1 * D, 0.6 * D);
      const size = or.int(8, 16);
      for (let m = 0; m < size; m++) {
        const rng = or.fork(`m${m}`);
        // Colleagues write the suite their own way: `Suite 400`, `Ste 400`, `#400`, or not at all.
        const suite = rng.pick(['Suite 400', 'Ste 400', '#400', undefined]);
        const s = ctx.fake.shopper('residential', {
          ip,
          ...(rng.chance(officeAddressShare)
            ? { address: suite === undefined ? { ...officeAddress } : { ...officeAddress, line2: suite } }
            : {}),
        });
        ctx.actor(s.customerId);
        actors.push({ rng, s, startMs: from + rng.real(0, 0.2 * D), typos: typosFor(rng, code, 0.1) });
      }
    }
    // A parcel locker at a station: strangers, each from home, all shipping to one address.
    const lr = ctx.rng.fork('locker');
    const locker = ctx.fake.address();
    for (let m = 0; m < ctx.scaled(lr.int(10, 18)); m++) {
      const rng = lr.fork(`m${m}`);
      const s = ctx.fake.shopper('residential', {
        address: { ...locker, line2: `Locker ${rng.int(1, 120)}` },
      });
      ctx.actor(s.customerId);
      actors.push({ rng, s, startMs: rng.real(0, 0.8 * D), typos: typosFor(rng, code, 0.1) });
    }
    return {
      planned: Math.round(actors.length * 2.2),
      async setup() {
        const id = await ctx.campaign({
          name: 'Newsletter $5 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 500 },
          per_customer_cap: 1,
          min_order_minor: 2000,
        });
        await ctx.addCode(id, { code });
      },
      async run() {
        await Promise.all(
          actors.map(async (a) => {
            await ctx.at(a.startMs);
            await honestCheckout(ctx, a.s, {
              rng: a.rng,
              code,
              cart: cartOf(a.rng, 2500, 12000),
              orderId: `${a.s.customerId}-1`,
              expectedMinor: 500,
              typos: a.typos,
            });
          }),
        );
      },
    };
  },
};

export const carrierCampusNat: Scenario = {
  name: 'carrier-campus-nat',
  label: 'honest',
  short: 'nat',
  summary:
    "A mobile carrier's NAT (70 subscribers behind 3 public IPs: about one checkout step a second on each) and a campus NAT (one IP, a student deal shared in a group chat: 35 students in 20 s)",
  models: 'hard case: carrier-grade and campus NAT',
  prepare(ctx) {
    const mobile = `${ctx.codeTag}MOBILE10`;
    const student = `${ctx.codeTag}STUDENT15`;
    const { seed, tag } = ctx.sim.settings;
    const egress = [0, 1, 2].map((k) => carrierEgressIp(seed, tag, k));
    const D = ctx.durationMs;
    const subscribers = spread(ctx.rng, ctx.scaled(70), 0, 0.85 * D).map((startMs, i) => {
      const rng = ctx.rng.fork(`sub${i}`);
      const s = ctx.fake.shopper('carrier', { ip: rng.pick(egress) });
      ctx.actor(s.customerId);
      return { rng, s, startMs, typos: typosFor(rng, mobile, 0.1) };
    });
    const campusIp = ctx.fake.ip('campus');
    const dorm = ctx.fake.address();
    const burstAt = 0.45 * D;
    const students = spread(ctx.rng, ctx.scaled(35), burstAt, burstAt + ctx.pace(20_000)).map(
      (startMs, i) => {
        const rng = ctx.rng.fork(`stu${i}`);
        const s = ctx.fake.shopper('campus', {
          ip: campusIp,
          segment: 'student',
          ...(rng.chance(0.5) ? { address: { ...dorm, line2: `Room ${100 + i}` } } : {}),
        });
        ctx.actor(s.customerId);
        return { rng, s, startMs, typos: typosFor(rng, student, 0.1) };
      },
    );
    return {
      planned: Math.round((subscribers.length + students.length) * 2.2),
      async setup() {
        const m = await ctx.campaign({
          name: 'Mobile app $10 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 1000 },
          per_customer_cap: 1,
          min_order_minor: 2000,
        });
        await ctx.addCode(m, { code: mobile });
        const s = await ctx.campaign({
          name: 'Students 15% (simulated)',
          discount: { type: 'percentage', basis_points: 1500, max_discount_minor: 3000 },
          per_customer_cap: 1,
          eligibility: { segments: ['student'] },
        });
        await ctx.addCode(s, { code: student });
      },
      async run() {
        await Promise.all([
          ...subscribers.map(async (a) => {
            await ctx.at(a.startMs);
            await honestCheckout(ctx, a.s, {
              rng: a.rng,
              code: mobile,
              cart: cartOf(a.rng, 2500, 15000),
              orderId: `${a.s.customerId}-1`,
              expectedMinor: 1000,
              typos: a.typos,
            });
          }),
          ...students.map(async (a) => {
            await ctx.at(a.startMs);
            const cart = cartOf(a.rng, 1500, 12000);
            await honestCheckout(ctx, a.s, {
              rng: a.rng,
              code: student,
              cart,
              orderId: `${a.s.customerId}-1`,
              expectedMinor: percentOff(cart.subtotal, 1500, 3000),
              typos: a.typos,
              thinkMs: [2_000, 8_000],
            });
          }),
        ]);
      },
    };
  },
};

export const flashSale: Scenario = {
  name: 'flash-sale',
  label: 'honest',
  short: 'fs',
  summary:
    'A flash sale for first orders, with its opening rush declared as a planned peak, opens a few seconds into the run: a burst of 110-170 genuinely new accounts (minutes to days old), a quarter of them on phones',
  models: 'hard case: a legitimate burst of new customers',
  prepare(ctx) {
    const code = `${ctx.codeTag}FLASH30`;
    const D = ctx.durationMs;
    const phoneIps = [0, 1, 2, 3].map(() => ctx.fake.ip('carrier'));
    // The merchant's own estimate of the opening rush, declared on the campaign as a planned peak.
    const expectedPerMinute = ctx.rng.int(4, 40);
    const peakMinutes = ctx.rng.int(20, 120);
    const actors = Array.from({ length: ctx.scaled(ctx.rng.int(110, 170)) }, (_, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const s = ctx.fake.shopper('residential', {
        firstOrder: true,
        accountAgeSeconds: rng.int(60, 3 * 86_400),
        ...(rng.chance(0.25) ? { ip: rng.pick(phoneIps) } : {}),
      });
      ctx.actor(s.customerId);
      // Most arrive within seconds of the opening (exponential), a few are early and wait.
      const offset = rng.chance(0.06)
        ? -rng.real(500, 2_500)
        : Math.min(-Math.log(1 - rng.next()) * 0.04 * D, 0.15 * D);
      return { rng, s, offset, cart: cartOf(rng, 4000, 20000) };
    });
    return {
      planned: Math.round(actors.length * 2.1),
      async setup() {},
      async run() {
        await ctx.at(0.3 * D);
        const lead = Math.max(3_000, 0.1 * D);
        const startsAt = ctx.serverIso(lead);
        const id = await ctx.campaign({
          name: 'Flash sale 30% (simulated)',
          discount: { type: 'percentage', basis_points: 3000, max_discount_minor: 5000 },
          starts_at: startsAt,
          ends_at: new Date(new Date(startsAt).getTime() + 3_600_000).toISOString(),
          per_customer_cap: 1,
          per_person_cap: 1,
          eligibility: { first_order_only: true },
          planned_peaks: [
            {
              starts_at: startsAt,
              ends_at: new Date(new Date(startsAt).getTime() + peakMinutes * 60_000).toISOString(),
              expected_per_minute: expectedPerMinute,
            },
          ],
        });
        await ctx.addCode(id, { code });
        const opening = ctx.elapsedAtServer(startsAt);
        await Promise.all(
          actors.map(async (a) => {
            await ctx.at(opening + a.offset);
            // Early birds are told "not started", wait a moment and check again.
            for (let i = 0; i < 4; i++) {
              const v = await ctx.patiently(() => ctx.validate(a.s, code, a.cart));
              if (v.record.outcome === 'allowed') break;
              if (v.record.reason !== 'campaign_not_started') return;
              await ctx.sleep(a.rng.int(800, 2_000));
            }
            await ctx.sleep(ctx.pace(a.rng.int(3_000, 15_000)));
            await ctx.patiently(() =>
              ctx.redeem(a.s, code, a.cart, `${a.s.customerId}-1`, {
                valueMinor: percentOff(a.cart.subtotal, 3000, 5000),
              }),
            );
          }),
        );
      },
    };
  },
};

export const typoRetry: Scenario = {
  name: 'typo-retry',
  label: 'honest',
  short: 'typo',
  summary:
    'Customers who mistype their code 1-5 times before getting it right: a unique voucher from an apology email (check symbol) or a public code',
  models: 'hard case: typos must not look like guessing',
  prepare(ctx) {
    const publicCode = `${ctx.codeTag}WELCOMEBACK`;
    const n = ctx.scaled(40);
    const vouchers: string[] = [];
    const actors = spread(ctx.rng, n, 0, 0.75 * ctx.durationMs).map((startMs, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const s = ctx.fake.shopper('residential');
      ctx.actor(s.customerId);
      const typos = Number(rng.weighted({ '1': 60, '2': 28, '3': 10, '5': 2 }));
      return { rng, s, startMs, typos, unique: i % 2 === 0, voucherIndex: Math.floor(i / 2) };
    });
    return {
      planned: Math.round(n * 3.7),
      async setup() {
        const v = await ctx.campaign({
          name: 'Apology voucher $10 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 1000 },
        });
        vouchers.push(
          ...(await ctx.generate(v, {
            count: Math.ceil(n / 2),
            prefix: `${ctx.codeTag}AV`,
            random_length: 8,
          })),
        );
        const p = await ctx.campaign({
          name: 'Welcome back $7 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 700 },
          per_customer_cap: 1,
        });
        await ctx.addCode(p, { code: publicCode });
      },
      async run() {
        await Promise.all(
          actors.map(async (a) => {
            await ctx.at(a.startMs);
            // Vouchers are generated by the server: which one a customer holds is known only now.
            const code = a.unique ? (vouchers[a.voucherIndex] as string) : publicCode;
            await honestCheckout(ctx, a.s, {
              rng: a.rng,
              code,
              cart: cartOf(a.rng, 2000, 9000),
              orderId: `${a.s.customerId}-1`,
              expectedMinor: a.unique ? 1000 : 700,
              typos: Array.from({ length: a.typos }, () => typoOf(a.rng, code)),
              thinkMs: [2_000, 6_000],
            });
          }),
        );
      },
    };
  },
};

export const movers: Scenario = {
  name: 'movers',
  label: 'honest',
  short: 'mv',
  summary:
    'Returning customers who move house, change card, or both, between two orders; a quarter of movers move into a flat whose former tenant used the once-per-person summer offer',
  models: 'hard case: changed identifiers, and an address shared with a stranger over time',
  prepare(ctx) {
    const spring = `${ctx.codeTag}HELLOSPRING`;
    const summer = `${ctx.codeTag}SUMMER12`;
    const D = ctx.durationMs;
    const tenants: Planned[] = [];
    const people = Array.from({ length: ctx.scaled(24) }, (_, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const before = ctx.fake.shopper('residential');
      ctx.actor(before.customerId, 'honest', 2);
      const change = rng.weighted({ move: 45, card: 30, both: 25 });
      const moves = change !== 'card';
      let address = moves ? ctx.fake.address() : before.address;
      if (moves && rng.chance(0.25)) {
        // The flat was someone else's home, and they used the summer offer from it.
        const tenant = ctx.fake.shopper('residential', { address });
        ctx.actor(tenant.customerId);
        tenants.push({ rng: rng.fork('tenant'), s: tenant, startMs: rng.real(0.05 * D, 0.3 * D) });
        address = tenant.address;
      }
      const after: Shopper = {
        ...before,
        address,
        ...(moves ? { ip: ctx.fake.ip('residential') } : {}),
        ...(change !== 'move' ? { card: ctx.fake.card() } : {}),
      };
      return { rng, before, after, first: rng.real(0, 0.3 * D), second: rng.real(0.45 * D, 0.75 * D) };
    });
    return {
      planned: Math.round((people.length * 2 + tenants.length) * 2.1),
      async setup() {
        const a = await ctx.campaign({
          name: 'Hello spring $8 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 800 },
          per_customer_cap: 1,
        });
        await ctx.addCode(a, { code: spring });
        const b = await ctx.campaign({
          name: 'Summer $12, once per person (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 1200 },
          per_customer_cap: 1,
          per_person_cap: 1,
        });
        await ctx.addCode(b, { code: summer });
      },
      async run() {
        await Promise.all([
          ...tenants.map(async (t) => {
            await ctx.at(t.startMs);
            await honestCheckout(ctx, t.s, {
              rng: t.rng,
              code: summer,
              cart: cartOf(t.rng, 3000, 15000),
              orderId: `${t.s.customerId}-1`,
              expectedMinor: 1200,
            });
          }),
          ...people.map(async (p) => {
            await ctx.at(p.first);
            await honestCheckout(ctx, p.before, {
              rng: p.rng,
              code: spring,
              cart: cartOf(p.rng, 3000, 15000),
              orderId: `${p.before.customerId}-1`,
              expectedMinor: 800,
            });
            await ctx.at(p.second);
            await honestCheckout(ctx, p.after, {
              rng: p.rng,
              code: summer,
              cart: cartOf(p.rng, 3000, 15000),
              orderId: `${p.after.customerId}-2`,
              expectedMinor: 1200,
            });
          }),
        ]);
      },
    };
  },
};

export const loyalCustomers: Scenario = {
  name: 'loyal-customers',
  label: 'honest',
  short: 'loy',
  summary:
    'Members earn points for an order, convert some into a coupon bound to them, and redeem it at their next checkout',
  models: 'hard case: legitimate points conversion right before use',
  prepare(ctx) {
    const D = ctx.durationMs;
    let programId = '';
    const actors = spread(ctx.rng, ctx.scaled(36), 0, 0.6 * D).map((startMs, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const s = ctx.fake.shopper('residential', {
        accountAgeSeconds: rng.int(180 * 86_400, 6 * 365 * 86_400),
      });
      ctx.actor(s.customerId);
      return { rng, s, startMs, history: rng.int(5, 30) * 100, earned: rng.int(1, 4) * 100 };
    });
    return {
      planned: actors.length * 4,
      async setup() {
        programId = (await ctx.program({ name: 'Member points (simulated)', minor_per_point: 1 })).id;
        await Promise.all(
          actors.map((a) => ctx.setupCredit(a.s.customerId, a.history, `${a.s.customerId}-history`)),
        );
      },
      async run() {
        await Promise.all(
          actors.map(async (a) => {
            await ctx.at(a.startMs);
            const id = a.s.customerId;
            await ctx.patiently(() => ctx.credit(id, a.earned, `${id}-earn-1`));
            await ctx.sleep(ctx.pace(a.rng.int(1_000, 5_000)));
            const balance = a.history + a.earned;
            const points = Math.min(10_000, a.rng.int(3, Math.max(3, balance / 100)) * 100);
            const converted = await ctx.patiently(() =>
              ctx.convert(id, programId, points, `${id}-convert-1`, { valueMinor: points }),
            );
            const coupon = (converted.body['coupon'] ?? {}) as { code?: string; amount_minor?: number };
            if (converted.record.outcome !== 'allowed' || !coupon.code) return;
            await ctx.sleep(ctx.pace(a.rng.int(2_000, 6_000)));
            const amount = coupon.amount_minor ?? points;
            await honestCheckout(ctx, a.s, {
              rng: a.rng,
              code: coupon.code,
              cart: cartOf(a.rng, amount + 1_000, amount + 15_000),
              orderId: `${id}-1`,
              expectedMinor: amount,
            });
          }),
        );
      },
    };
  },
};

export const HONEST_SCENARIOS: Scenario[] = [
  regularCustomers,
  householdsOffices,
  carrierCampusNat,
  flashSale,
  typoRetry,
  movers,
  loyalCustomers,
];
