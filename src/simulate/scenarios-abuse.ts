/**
 * Abusive traffic: the attacks of the product documents' use cases. Each attacker has a budget and
 * adapts a little — slows down when rate limited, rotates an identifier (address, device, card, account)
 * when locked or refused — and most cannot pass a step-up challenge (bots and account thieves never do;
 * people running several accounts on their own phones sometimes can).
 */
import { CODE_ALPHABET, checkCharacter } from '../domain/codes.js';
import type { AttemptResult, ScenarioContext } from './context.js';
import { carrierEgressIp, type Faker, type Shopper } from './fakes.js';
import type { Rng } from './prng.js';
import { cartOf, percentOff, type Scenario, spread } from './scenario.js';

const stopped = (r: AttemptResult) => r.record.outcome !== 'allowed' && r.record.outcome !== 'held';

/** An attacker's pace: waits `interval` between attempts, slowing down each time it is rate limited. */
class Pace {
  constructor(
    private interval: number,
    private readonly slowest: number,
  ) {}
  /** After an answer: wait, slower if limited. Returns whether the caller's keys are locked. */
  async after(
    ctx: ScenarioContext,
    r: AttemptResult,
    maxWaitMs = 3_000,
  ): Promise<'locked' | 'limited' | 'ok'> {
    if (r.classified.outcome === 'rate_limited') {
      if (r.classified.reason === 'locked') return 'locked';
      this.interval = Math.min(this.interval * 2, this.slowest);
      await ctx.sleep(Math.min((r.classified.retryAfterSeconds ?? 1) * 1000, maxWaitMs));
      return 'limited';
    }
    await ctx.sleep(this.interval);
    return 'ok';
  }
}

// ---------------------------------------------------------------------------------------------------

const DICTIONARY = [
  'SAVE5',
  'SAVE10',
  'SAVE15',
  'SAVE20',
  'SAVE25',
  'SAVE50',
  'WELCOME5',
  'WELCOME10',
  'WELCOME15',
  'WELCOME20',
  'FREESHIPPING',
  'FREE10',
  'VIP10',
  'VIP20',
  'VIP30',
  'VIP40',
  'VIP50',
  'STAFF10',
  'STAFF20',
  'STAFF30',
  'STAFF50',
  'EMPLOYEE',
  'EMPLOYEE20',
  'HOLIDAY10',
  'HOLIDAY20',
  'BLACKFRIDAY',
  'BF2025',
  'CYBER20',
  'CYBERMONDAY',
  'NEWYEAR',
  'THANKYOU',
  'THANKS10',
  'FRIENDS',
  'FAMILY20',
  'PARTNER10',
  'TEST',
  'TEST100',
  'DISCOUNT',
  'PROMO10',
  'PROMO20',
  'BIRTHDAY',
  'VIPONLY',
  'INSIDER',
  'SECRET20',
  'EXTRA10',
  'TAKE10',
  'GET20',
  'OFF10',
  'OFF20',
];

/** A guess with the shape of a generated batch; a smart guesser computes the (public) check symbol. */
function shapeGuess(rng: Rng, prefix: string, length: number, smart: boolean): string {
  const body = rng.symbols(CODE_ALPHABET, length);
  return `${prefix}${body}${smart ? checkCharacter(body) : rng.pick([...CODE_ALPHABET])}`;
}

export const codeSpraying: Scenario = {
  name: 'code-spraying',
  label: 'abuse',
  short: 'spr',
  summary:
    'Scripts try a dictionary of likely codes and guesses shaped like a generated batch; a hit is redeemed again and again with new accounts. One starts on a mobile carrier address shared with honest subscribers',
  models: 'use case 10 (code spraying, brute force) and 2 (bots testing codes)',
  prepare(ctx) {
    const T = ctx.codeTag;
    const { seed, tag } = ctx.sim.settings;
    const batchPrefix = `${T}GC`;
    const words = DICTIONARY.map((w) => T + w);
    const sprayers = Array.from({ length: ctx.scaled(3) }, (_, i) => {
      const rng = ctx.rng.fork(`s${i}`);
      const fake = ctx.fake.fork(`s${i}`);
      const id = ctx.actor(`sprayer-${tag}-${i}`);
      const dictionary = rng.shuffle(words);
      const guesses = Array.from({ length: 140 }, (_, k) =>
        k % 3 === 2 || dictionary.length === 0
          ? shapeGuess(rng, batchPrefix, 8, i % 2 === 0)
          : (dictionary.shift() as string),
      );
      return { id, rng, fake, guesses, startMs: rng.real(0.02, 0.2) * ctx.durationMs, onPhone: i === 0 };
    });
    const newAccount = (fake: Faker, rng: Rng): Shopper =>
      fake.shopper('datacenter', {
        accountAgeSeconds: rng.int(60, 3_600),
        userAgent: fake.userAgent(true),
        phone: undefined,
      });
    return {
      planned: sprayers.reduce((n, s) => n + s.guesses.length, 0),
      async setup() {
        const vip = await ctx.campaign({
          name: 'Internal VIP $30 (simulated; meant for a mailing list, no restriction set)',
          discount: { type: 'fixed_amount', amount_minor: 3000 },
          per_customer_cap: 1,
        });
        await ctx.addCode(vip, { code: `${T}VIP30` });
        const staff = await ctx.campaign({
          name: 'Staff $50 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 5000 },
          eligibility: { segments: ['staff'] },
        });
        await ctx.addCode(staff, { code: `${T}STAFF50` });
        const gifts = await ctx.campaign({
          name: 'Gift codes $25 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 2500 },
        });
        await ctx.addCode(gifts, { generate: { count: 500, prefix: batchPrefix, random_length: 8 } });
      },
      async run() {
        await Promise.all(
          sprayers.map(async (sp) => {
            await ctx.at(sp.startMs);
            let s = newAccount(sp.fake, sp.rng);
            if (sp.onPhone) s = { ...s, ip: carrierEgressIp(seed, tag, 0), userAgent: sp.fake.userAgent() };
            const pace = new Pace(250, 4_000);
            let orders = 0;
            // The budget counts requests; a guess refused with a 429 is tried again once the pace allows.
            let spent = 0;
            let g = 0;
            while (g < sp.guesses.length && spent < sp.guesses.length) {
              if (ctx.timeLeft() <= 0 || ctx.elapsed() > ctx.durationMs) break;
              const guess = sp.guesses[g] as string;
              const cart = cartOf(sp.rng, 5_000, 12_000);
              const v = await ctx.validate(s, guess, cart, { actor: sp.id, passesStepUp: false });
              spent += 1;
              if (v.record.outcome === 'rate_limited') {
                // Locked: a new address, device and account; merely limited: slower.
                if ((await pace.after(ctx, v)) === 'locked') s = newAccount(sp.fake, sp.rng);
                continue;
              }
              g += 1;
              if (v.record.outcome === 'allowed') {
                // A hit: redeem it, then again with fresh accounts until it stops working.
                const discount = Number(v.body['discount_minor'] ?? 0);
                for (let k = 0; k < 3; k++) {
                  orders += 1;
                  spent += 1;
                  const r = await ctx.redeem(s, guess, cart, `${sp.id}-${orders}`, {
                    actor: sp.id,
                    valueMinor: discount,
                    passesStepUp: false,
                  });
                  s = { ...newAccount(sp.fake, sp.rng), ip: s.ip };
                  if (stopped(r)) break;
                  await ctx.sleep(500);
                }
              }
              await pace.after(ctx, v);
            }
          }),
        );
      },
    };
  },
};

export const leakedPublicCode: Scenario = {
  name: 'leaked-public-code',
  label: 'abuse',
  short: 'leak',
  summary:
    "A creator's first-order code (40% off) leaks on social media; people open new accounts to use it, 1-3 each, from their own phone and card (email aliases, throwaway addresses)",
  models: 'use case 1 (public promo leak)',
  prepare(ctx) {
    const code = `${ctx.codeTag}CREATOR40`;
    const D = ctx.durationMs;
    const people = Array.from({ length: ctx.scaled(45) }, (_, i) => {
      const rng = ctx.rng.fork(`p${i}`);
      const fake = ctx.fake.fork(`p${i}`);
      const id = ctx.actor(`opportunist-${ctx.sim.settings.tag}-${i}`);
      const base = fake.shopper(rng.chance(0.3) ? 'carrier' : 'residential');
      const accounts = Number(rng.weighted({ '1': 50, '2': 30, '3': 20 }));
      const [user = 'x', domain = 'gmail.com'] = base.email.split('@');
      const plans = Array.from({ length: accounts }, (_, j) => {
        const style = j === 0 ? 'own' : rng.weighted({ alias: 50, disposable: 30, fresh: 20 });
        const email =
          style === 'own'
            ? base.email
            : style === 'alias'
              ? `${user.replace('.', '')}+promo${j}@${domain}`
              : fake.email(style === 'disposable');
        return {
          ...base,
          customerId: fake.customerId(),
          email,
          firstOrder: true,
          accountAgeSeconds: rng.int(10, 7_200),
          ...(rng.chance(0.3) ? { card: fake.card() } : {}),
        };
      });
      // The post goes viral mid-run: arrivals peak in the middle.
      const startMs = (0.1 + 0.6 * ((rng.next() + rng.next()) / 2)) * D;
      return { id, rng, fake, plans, startMs, stepUp: rng.chance(0.3) };
    });
    return {
      planned: people.reduce((n, p) => n + p.plans.length * 2, 0),
      async setup() {
        const id = await ctx.campaign({
          name: 'Creator 40% first order (simulated)',
          discount: { type: 'percentage', basis_points: 4000, max_discount_minor: 4000 },
          per_customer_cap: 1,
          per_person_cap: 1,
          eligibility: { first_order_only: true },
        });
        await ctx.addCode(id, { code });
      },
      async run() {
        await Promise.all(
          people.map(async (p) => {
            await ctx.at(p.startMs);
            let misses = 0;
            let rotateCard = false;
            for (const [j, plan] of p.plans.entries()) {
              const s = rotateCard ? { ...plan, card: p.fake.card() } : plan;
              const cart = cartOf(p.rng, 6_000, 20_000);
              const options = { actor: p.id, passesStepUp: p.stepUp };
              const v = await ctx.validate(s, code, cart, options);
              const r = stopped(v)
                ? v
                : await ctx.redeem(s, code, cart, `${s.customerId}-1`, {
                    ...options,
                    valueMinor: percentOff(cart.subtotal, 4000, 4000),
                  });
              if (stopped(r)) {
                misses += 1;
                rotateCard = true;
                if (misses >= 2) break;
              }
              if (j < p.plans.length - 1) await ctx.sleep(ctx.pace(p.rng.int(3_000, 10_000)));
            }
          }),
        );
      },
    };
  },
};

export const botFarm: Scenario = {
  name: 'bot-farm',
  label: 'abuse',
  short: 'bot',
  summary:
    'Headless browsers on a few devices, a new proxy IP and a new account for every attempt, a handful of virtual cards; they redeem a welcome offer as fast as they are let',
  models: 'use case 2 (automated bot redemption)',
  prepare(ctx) {
    const code = `${ctx.codeTag}HELLO10`;
    const farm = ctx.fake.fork('farm');
    const cards = [0, 1, 2, 3].map(() => farm.card());
    const bots = Array.from({ length: ctx.scaled(5) }, (_, i) => {
      const rng = ctx.rng.fork(`b${i}`);
      const fake = ctx.fake.fork(`b${i}`);
      const id = ctx.actor(`bot-${ctx.sim.settings.tag}-${i}`);
      return {
        id,
        rng,
        fake,
        devices: [0, 1, 2].map(() => fake.deviceId()),
        budget: 45,
        startMs: rng.real(0.05, 0.3) * ctx.durationMs,
      };
    });
    return {
      planned: bots.reduce((n, b) => n + b.budget, 0),
      async setup() {
        const id = await ctx.campaign({
          name: 'Welcome $10 first order (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 1000 },
          per_customer_cap: 1,
          per_person_cap: 1,
          min_order_minor: 2500,
          eligibility: { first_order_only: true },
        });
        await ctx.addCode(id, { code });
      },
      async run() {
        await Promise.all(
          bots.map(async (b, i) => {
            await ctx.at(b.startMs);
            const pace = new Pace(400, 3_000);
            let device = 0;
            let card = i % cards.length;
            for (let k = 0; k < b.budget && ctx.timeLeft() > 0 && ctx.elapsed() < ctx.durationMs; k++) {
              const s = b.fake.shopper('datacenter', {
                deviceId: b.devices[device],
                card: cards[card] as string,
                email: b.fake.email(true),
                phone: undefined,
                firstOrder: true,
                accountAgeSeconds: b.rng.int(5, 600),
                userAgent: b.fake.userAgent(true),
              });
              const r = await ctx.redeem(s, code, cartOf(b.rng, 3_000, 8_000), `${s.customerId}-1`, {
                actor: b.id,
                valueMinor: 1000,
                passesStepUp: false,
              });
              if (stopped(r) && r.record.outcome !== 'rate_limited') {
                // Refused: the next account comes from another device and card.
                device = (device + 1) % b.devices.length;
                card = (card + 1) % cards.length;
              }
              await pace.after(ctx, r);
            }
          }),
        );
      },
    };
  },
};

type Shared = 'card' | 'address' | 'phone' | 'device';

export const multiAccountRing: Scenario = {
  name: 'multi-account-ring',
  label: 'abuse',
  short: 'ring',
  summary:
    "Referral rings: 4-6 fake 'new customers' redeem their leader's referral code, sharing a card, an address, a phone or a device (some two of them); refused, the ring swaps the identifier it shares",
  models: 'use case 3 (referral fraud rings, multi-accounting)',
  prepare(ctx) {
    const D = ctx.durationMs;
    const rings = Array.from({ length: ctx.scaled(10) }, (_, r) => {
      const rng = ctx.rng.fork(`r${r}`);
      const fake = ctx.fake.fork(`r${r}`);
      const id = ctx.actor(`ring-${ctx.sim.settings.tag}-${r}`);
      const style = rng.weighted({ card: 35, address: 25, phone: 20, device: 10, careful: 10 });
      const sharedTypes: Shared[] = style === 'careful' ? [] : [style];
      if (style !== 'careful' && rng.chance(0.3)) {
        sharedTypes.push(
          rng.pick((['card', 'address', 'phone', 'device'] as Shared[]).filter((t) => t !== style)),
        );
      }
      const ips = [fake.ip('residential'), fake.ip('residential')];
      const shared = {
        card: fake.card(),
        address: fake.address(),
        phone: fake.phone(),
        device: fake.deviceId(),
      };
      const members = Array.from({ length: rng.int(4, 6) }, () => {
        const own = fake.shopper('residential', {
          ip: rng.pick(ips),
          firstOrder: true,
          accountAgeSeconds: rng.int(60, 86_400),
        });
        const s: Shopper = { ...own };
        for (const t of sharedTypes) {
          if (t === 'card') s.card = shared.card;
          if (t === 'address') s.address = shared.address;
          if (t === 'phone') s.phone = shared.phone;
          if (t === 'device') s.deviceId = shared.device;
        }
        return s;
      });
      return {
        id,
        rng,
        fake,
        code: `${ctx.codeTag}REF${r}${fake.rng.symbols('ABCDEFGHJKLMNPQRSTUVWXYZ', 4)}`,
        sharedTypes,
        members,
        startMs: rng.real(0.05, 0.45) * D,
        stepUp: rng.chance(0.7),
      };
    });
    return {
      planned: rings.reduce((n, r) => n + r.members.length * 2, 0),
      async setup() {
        const id = await ctx.campaign({
          name: 'Referral $15 for new customers (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 1500 },
          per_customer_cap: 1,
          per_person_cap: 1,
          eligibility: { first_order_only: true },
        });
        await ctx.importCodes(
          id,
          rings.map((r) => ({ code: r.code, max_uses: 20 })),
        );
      },
      async run() {
        await Promise.all(
          rings.map(async (ring) => {
            await ctx.at(ring.startMs);
            let rotated: Shared | null = null;
            for (const member of ring.members) {
              // Once refused, the ring stops sharing its main identifier: each member brings their own.
              const s: Shopper = { ...member };
              if (rotated === 'card') s.card = ring.fake.card();
              if (rotated === 'address') s.address = ring.fake.address();
              if (rotated === 'phone') s.phone = ring.fake.phone();
              if (rotated === 'device') s.deviceId = ring.fake.deviceId();
              const cart = cartOf(ring.rng, 3_000, 12_000);
              const options = { actor: ring.id, passesStepUp: ring.stepUp };
              const v = await ctx.validate(s, ring.code, cart, options);
              const r = stopped(v)
                ? v
                : await ctx.redeem(s, ring.code, cart, `${s.customerId}-1`, { ...options, valueMinor: 1500 });
              if (r.record.outcome === 'refused_by_defense' && rotated === null) {
                rotated = ring.sharedTypes[0] ?? null;
              }
              await ctx.sleep(ctx.pace(ring.rng.int(1_500, 5_000)));
            }
          }),
        );
      },
    };
  },
};

/** Latin letters and the Cyrillic or Greek letters that look the same (UTS #39 confusables). */
const LOOK_ALIKES: Record<string, string> = {
  a: 'а',
  e: 'е',
  o: 'о',
  p: 'р',
  c: 'с',
  x: 'х',
  y: 'у',
  i: 'і',
  s: 'ѕ',
};

/** `text` with 1-2 letters swapped for a look-alike from another script (unchanged if none has one). */
function disguised(rng: Rng, text: string): string {
  const chars = [...text];
  const at = chars.map((c, i) => (LOOK_ALIKES[c.toLowerCase()] ? i : -1)).filter((i) => i >= 0);
  for (let n = rng.int(1, 2); n > 0 && at.length > 0; n--) {
    const i = at.splice(rng.int(0, at.length - 1), 1)[0] as number;
    const c = chars[i] as string;
    const alike = LOOK_ALIKES[c.toLowerCase()] as string;
    chars[i] = c === c.toLowerCase() ? alike : alike.toUpperCase();
  }
  return chars.join('');
}

type AliasTrick = 'plus' | 'proton-dots' | 'fastmail-subdomain' | 'yahoo-base' | 'confusable';
type AddressTrick = 'unit' | 'transposed' | 'confusable' | 'elsewhere';

/** The n-th alias of one mailbox (n = 0: the mailbox itself). */
function aliasOf(rng: Rng, user: string, trick: AliasTrick, n: number): string {
  const tag = `${rng.pick(['shop', 'deals', 'promo', 'x', 'new'])}${n}`;
  const half = Math.max(1, Math.floor(user.length / 2));
  switch (trick) {
    case 'plus':
      return n === 0
        ? `${user}@${rng.pick(['proton.me', 'fastmail.com', 'icloud.com', 'outlook.com'])}`
        : `${user}+${tag}@${rng.pick(['proton.me', 'fastmail.com', 'icloud.com', 'outlook.com'])}`;
    case 'proton-dots':
      // One Proton account answers at four domains and ignores dots, hyphens and underscores.
      return `${user.slice(0, half)}${n === 0 ? '' : rng.pick(['.', '-', '_'])}${user.slice(half)}${n > 1 ? `+${tag}` : ''}@${rng.pick(['proton.me', 'protonmail.com', 'pm.me', 'protonmail.ch'])}`;
    case 'fastmail-subdomain':
      return n === 0 ? `${user}@fastmail.com` : `${tag}@${user}.fastmail.com`;
    case 'yahoo-base':
      return `${user}-${tag}@yahoo.com`;
    case 'confusable':
      return n === 0 ? `${user}@gmail.com` : `${disguised(rng, user)}@gmail.com`;
  }
}

function addressOf(rng: Rng, fake: Faker, home: Shopper['address'], trick: AddressTrick, n: number) {
  if (n === 0) return home;
  switch (trick) {
    case 'unit':
      return {
        ...home,
        line2: rng.pick([`Apt ${rng.int(2, 40)}`, `#${rng.int(2, 40)}`, `Unit ${rng.int(1, 9)}B`]),
      };
    case 'transposed': {
      const [number, ...words] = home.line1.split(' ');
      const shuffled = rng.chance(0.5) ? [...words].reverse() : [words[1], words[0], ...words.slice(2)];
      return { ...home, line1: [number, ...shuffled].join(' ') };
    }
    case 'confusable':
      return { ...home, line1: disguised(rng, home.line1) };
    case 'elsewhere':
      // A friend's or a workplace address: only the email links this account.
      return fake.address();
  }
}

export const aliasTricks: Scenario = {
  name: 'alias-tricks',
  label: 'abuse',
  short: 'alias',
  summary:
    'People open 2-4 accounts each for a once-per-person welcome offer, never reusing a card or device: +tags at Proton, Fastmail, iCloud and Outlook, Proton dots, Fastmail subdomains, Yahoo base names, look-alike letters, made-up unit numbers, transposed or disguised street names',
  models: 'alias multi-accounting that does not reuse a card',
  prepare(ctx) {
    const code = `${ctx.codeTag}WELCOME20`;
    const D = ctx.durationMs;
    const people = Array.from({ length: ctx.scaled(ctx.rng.int(18, 30)) }, (_, i) => {
      const rng = ctx.rng.fork(`p${i}`);
      const fake = ctx.fake.fork(`p${i}`);
      const id = ctx.actor(`alias-${ctx.sim.settings.tag}-${i}`);
      const home = fake.shopper('residential');
      const user = `${home.email.split('@')[0]?.replace(/\./g, '') ?? 'x'}`;
      const emailTrick = rng.weighted<AliasTrick>({
        plus: 35,
        'proton-dots': 15,
        'fastmail-subdomain': 10,
        'yahoo-base': 10,
        confusable: 30,
      });
      const addressTrick = rng.weighted<AddressTrick>({
        unit: 35,
        transposed: 25,
        confusable: 20,
        elsewhere: 20,
      });
      const accounts = Array.from({ length: rng.int(2, 4) }, (_, n) => ({
        ...home,
        customerId: fake.customerId(),
        // A new card and a fresh browser for every account: nothing but the alias and the address repeat.
        card: n === 0 ? home.card : fake.card(),
        deviceId: n === 0 ? home.deviceId : fake.deviceId(),
        phone: undefined,
        email: aliasOf(rng, user, emailTrick, n),
        address: addressOf(rng, fake, home.address, addressTrick, n),
        firstOrder: true,
        accountAgeSeconds: rng.int(30, 3 * 86_400),
      }));
      return { id, rng, accounts, startMs: rng.real(0.05, 0.6) * D, stepUp: rng.chance(0.6) };
    });
    return {
      planned: people.reduce((n, p) => n + p.accounts.length * 2, 0),
      async setup() {
        const id = await ctx.campaign({
          name: 'Welcome 20% once per person (simulated)',
          discount: { type: 'percentage', basis_points: 2000, max_discount_minor: 3000 },
          per_customer_cap: 1,
          per_person_cap: 1,
          eligibility: { first_order_only: true },
        });
        await ctx.addCode(id, { code });
      },
      async run() {
        await Promise.all(
          people.map(async (p) => {
            await ctx.at(p.startMs);
            for (const [n, s] of p.accounts.entries()) {
              const cart = cartOf(p.rng, 4_000, 15_000);
              const value = percentOff(cart.subtotal, 2000, 3000);
              const options = { actor: p.id, passesStepUp: p.stepUp };
              if (n === 0) {
                // The first account is the one welcome the person is due: redeemed straight away, entitled.
                await ctx.redeem(s, code, cart, `${s.customerId}-1`, {
                  ...options,
                  label: 'entitled',
                  burst: `${p.id}-welcome`,
                  valueMinor: value,
                });
              } else {
                // A refusal at the check stops the order's discount: stake it there unless it passes.
                const v = await ctx.validate(s, code, cart, {
                  ...options,
                  valueMinor: value,
                  valueMinorIfAllowed: 0,
                });
                if (!stopped(v)) {
                  await ctx.redeem(s, code, cart, `${s.customerId}-1`, { ...options, valueMinor: value });
                }
              }
              await ctx.sleep(ctx.pace(p.rng.int(4_000, 15_000)));
            }
          }),
        );
      },
    };
  },
};

export const raceExploit: Scenario = {
  name: 'race-exploit',
  label: 'abuse',
  short: 'race',
  summary:
    'Holders of a single-use $20 code fire 8 redemptions of it at once for 8 orders; the one use it allows is "entitled", the 7 others are the attack',
  models: 'cap race (check-then-act) from the product guide',
  prepare(ctx) {
    const attackers = Array.from({ length: ctx.scaled(10) }, (_, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const s = ctx.fake.shopper('residential');
      const id = ctx.actor(`racer-${ctx.sim.settings.tag}-${i}`);
      return {
        id,
        rng,
        s,
        code: `${ctx.codeTag}ONE${ctx.fake.rng.symbols(CODE_ALPHABET, 8)}`,
        startMs: rng.real(0.1, 0.8) * ctx.durationMs,
      };
    });
    const parallel = 8;
    return {
      planned: attackers.length * parallel,
      async setup() {
        const id = await ctx.campaign({
          name: 'One-time $20 codes (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 2000 },
        });
        await ctx.importCodes(
          id,
          attackers.map((a) => ({ code: a.code, max_uses: 1 })),
        );
      },
      async run() {
        await Promise.all(
          attackers.map(async (a) => {
            await ctx.at(a.startMs);
            const burst = `${a.id}-burst`;
            await ctx.burst(
              Array.from(
                { length: parallel },
                (_, k) => () =>
                  ctx.redeem(a.s, a.code, cartOf(a.rng, 4_000, 9_000), `${a.id}-order-${k}`, {
                    actor: a.id,
                    valueMinor: 2000,
                    passesStepUp: false,
                    burst,
                  }),
              ),
            );
          }),
        );
      },
    };
  },
};

export const accountTakeover: Scenario = {
  name: 'account-takeover',
  label: 'abuse',
  short: 'ato',
  summary:
    "Stolen member accounts: from a new device, IP, card and shipping address, the thief converts the member's points into coupons and spends them at once",
  models: 'use case 6 (account takeover redemption)',
  prepare(ctx) {
    let programId = '';
    let memberCampaign = '';
    const memberCode = `${ctx.codeTag}MEMBER5`;
    const victims = Array.from({ length: ctx.scaled(12) }, (_, i) => {
      const rng = ctx.rng.fork(`v${i}`);
      const fake = ctx.fake.fork(`v${i}`);
      const victim = fake.shopper('residential', {
        accountAgeSeconds: rng.int(365 * 86_400, 6 * 365 * 86_400),
      });
      const thief: Shopper = {
        ...victim,
        ip: fake.ip(rng.chance(0.5) ? 'datacenter' : 'residential'),
        deviceId: fake.deviceId(),
        userAgent: fake.userAgent(),
        address: fake.address(),
        card: fake.card(),
      };
      const id = ctx.actor(`thief-${ctx.sim.settings.tag}-${i}`);
      return {
        id,
        rng,
        victim,
        thief,
        balance: rng.int(30, 120) * 100,
        startMs: rng.real(0.1, 0.75) * ctx.durationMs,
      };
    });
    return {
      planned: victims.length * 3,
      async setup() {
        programId = (await ctx.program({ name: 'Rewards (simulated)', minor_per_point: 1 })).id;
        memberCampaign = await ctx.campaign({
          name: 'Member $5 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 500 },
        });
        await ctx.addCode(memberCampaign, { code: memberCode });
        await Promise.all(
          victims.map(async (v) => {
            await ctx.setupCredit(v.victim.customerId, v.balance, `${v.victim.customerId}-history`);
            // The member's history: an order from home, on their own device and card.
            await ctx.sim.http.request('POST', '/v1/redemptions', {
              bucket: 'setup',
              body: ctx.checkoutBody(v.victim, memberCode, { subtotal: 4_000 }, `${v.victim.customerId}-h1`),
              headers: { 'idempotency-key': `${ctx.sim.settings.tag}-${v.victim.customerId}-h1` },
            });
          }),
        );
      },
      async run() {
        await Promise.all(
          victims.map(async (v) => {
            await ctx.at(v.startMs);
            const customer = v.victim.customerId;
            let left = v.balance;
            for (let k = 1; k <= 3 && left >= 100; k++) {
              const points = Math.min(left, 10_000);
              // The drain counts where it is decided: a stopped conversion protects the coupon's worth;
              // a conversion that goes through hands the stake to the redemption that cashes it.
              const c = await ctx.convert(customer, programId, points, `${customer}-ato-${k}`, {
                actor: v.id,
                valueMinor: points,
                valueMinorIfAllowed: 0,
                passesStepUp: false,
              });
              if (stopped(c)) break;
              left -= points;
              const coupon = (c.body['coupon'] ?? {}) as { code?: string; amount_minor?: number };
              if (!coupon.code) break;
              const amount = coupon.amount_minor ?? points;
              await ctx.sleep(ctx.pace(v.rng.int(1_000, 4_000)));
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

export const partnerLeak: Scenario = {
  name: 'partner-leak',
  label: 'abuse',
  short: 'ptn',
  summary:
    "A partner's batch of single-use $20 codes is posted on a coupon site and used by outsiders; the partner's contract caps its redemptions",
  models: 'use case 4 (partner code abuse)',
  prepare(ctx) {
    const outsiders = ctx.scaled(70);
    const cap = ctx.scaled(40);
    const codes = Array.from(
      { length: outsiders + 20 },
      () => `${ctx.codeTag}ACME${ctx.fake.rng.symbols(CODE_ALPHABET, 6)}`,
    );
    const people = spread(ctx.rng, outsiders, 0.05 * ctx.durationMs, 0.8 * ctx.durationMs).map(
      (startMs, i) => {
        const rng = ctx.rng.fork(`o${i}`);
        const s = ctx.fake.shopper('residential');
        ctx.actor(s.customerId);
        // Most take the next code down the list; some take one near the top that is already gone.
        const code = rng.chance(0.1) ? (codes[rng.int(0, Math.min(i, 5))] as string) : (codes[i] as string);
        return { rng, s, startMs, code };
      },
    );
    return {
      planned: outsiders * 2,
      async setup() {
        const id = await ctx.campaign({
          name: 'Partner perk $20 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 2000 },
          per_customer_cap: 1,
        });
        await ctx.importCodes(
          id,
          codes.map((code) => ({ code, max_uses: 1, partner: 'acme' })),
        );
        await ctx.capPartner(id, 'acme', cap);
      },
      async run() {
        await Promise.all(
          people.map(async (p) => {
            await ctx.at(p.startMs);
            const cart = cartOf(p.rng, 4_000, 15_000);
            const options = { passesStepUp: p.rng.chance(0.3) };
            const v = await ctx.validate(p.s, p.code, cart, options);
            if (stopped(v)) return;
            await ctx.sleep(ctx.pace(p.rng.int(2_000, 8_000)));
            await ctx.redeem(p.s, p.code, cart, `${p.s.customerId}-1`, { ...options, valueMinor: 2000 });
          }),
        );
      },
    };
  },
};

export const windowEdges: Scenario = {
  name: 'window-edges',
  label: 'abuse',
  short: 'edge',
  summary:
    'A timed drop open for a few seconds: attempts 2-4 s before it opens (a leaked launch) and 0.3-1.5 s after it closes (a stale cart)',
  models: 'use case 5 (early or late redemptions at the edges of the validity window)',
  prepare(ctx) {
    const code = `${ctx.codeTag}EDGE15`;
    const attackers = Array.from({ length: ctx.scaled(16) }, (_, i) => {
      const rng = ctx.rng.fork(`a${i}`);
      const s = ctx.fake.shopper('residential');
      ctx.actor(s.customerId);
      const early = i % 2 === 0;
      // Early attempts lead the opening by seconds, not less: an attempt waits for a free connection of the
      // client (--concurrency) before it is sent, and under load that wait could carry an "early" attempt
      // into the window (a late one only gets later).
      return { rng, s, early, delta: early ? rng.pick([4_000, 3_000, 2_000]) : rng.pick([300, 800, 1_500]) };
    });
    return {
      planned: attackers.length,
      async setup() {},
      async run() {
        const D = ctx.durationMs;
        await ctx.at(0.25 * D);
        // Far enough ahead that creating the campaign (slow under load) does not use up the early leads.
        const startsAt = ctx.serverIso(Math.max(8_000, 0.12 * D));
        const endsAt = new Date(new Date(startsAt).getTime() + Math.max(4_000, 0.1 * D)).toISOString();
        const id = await ctx.campaign({
          name: 'Timed drop $15 (simulated)',
          discount: { type: 'fixed_amount', amount_minor: 1500 },
          starts_at: startsAt,
          ends_at: endsAt,
        });
        await ctx.addCode(id, { code });
        const opens = ctx.elapsedAtServer(startsAt);
        const closes = ctx.elapsedAtServer(endsAt);
        await Promise.all(
          attackers.map(async (a) => {
            await ctx.at(a.early ? opens - a.delta : closes + a.delta);
            await ctx.redeem(a.s, code, cartOf(a.rng, 3_000, 9_000), `${a.s.customerId}-1`, {
              valueMinor: 1500,
              passesStepUp: false,
            });
          }),
        );
      },
    };
  },
};

export const loyaltyDoubleAward: Scenario = {
  name: 'loyalty-double-award',
  label: 'abuse',
  short: 'dbl',
  summary:
    "Points for one order credited 4 times at once (a replayed webhook), then the whole balance converted 5 times at once; one of each is the member's due",
  models: 'use case 7 (loyalty point inflation by a race)',
  prepare(ctx) {
    let programId = '';
    const members = Array.from({ length: ctx.scaled(12) }, (_, i) => {
      const rng = ctx.rng.fork(`m${i}`);
      const s = ctx.fake.shopper('residential');
      const id = ctx.actor(`doubler-${ctx.sim.settings.tag}-${i}`);
      return {
        id,
        rng,
        s,
        history: rng.int(10, 40) * 100,
        award: rng.int(3, 8) * 100,
        startMs: rng.real(0.1, 0.8) * ctx.durationMs,
      };
    });
    const credits = 4;
    const conversions = 5;
    return {
      planned: members.length * (credits + conversions),
      async setup() {
        programId = (await ctx.program({ name: 'Points (simulated)', minor_per_point: 1 })).id;
        await Promise.all(
          members.map((m) => ctx.setupCredit(m.s.customerId, m.history, `${m.s.customerId}-history`)),
        );
      },
      async run() {
        await Promise.all(
          members.map(async (m) => {
            await ctx.at(m.startMs);
            const customer = m.s.customerId;
            const award = `${m.id}-award`;
            await ctx.burst(
              Array.from(
                { length: credits },
                () => () =>
                  ctx.credit(customer, m.award, `${customer}-order-1`, {
                    actor: m.id,
                    valueMinor: m.award,
                    passesStepUp: false,
                    burst: award,
                  }),
              ),
            );
            await ctx.sleep(m.rng.int(500, 2_000));
            const points = Math.min(10_000, m.history + m.award);
            const spend = `${m.id}-spend`;
            await ctx.burst(
              Array.from(
                { length: conversions },
                (_, k) => () =>
                  ctx.convert(customer, programId, points, `${customer}-convert-${k}`, {
                    actor: m.id,
                    valueMinor: points,
                    passesStepUp: false,
                    burst: spend,
                  }),
              ),
            );
          }),
        );
      },
    };
  },
};

export const ABUSE_SCENARIOS: Scenario[] = [
  codeSpraying,
  leakedPublicCode,
  botFarm,
  multiAccountRing,
  aliasTricks,
  raceExploit,
  accountTakeover,
  partnerLeak,
  windowEdges,
  loyaltyDoubleAward,
];
