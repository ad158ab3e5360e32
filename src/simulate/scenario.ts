/**
 * What a scenario is, and the behaviour honest customers share: arrive, maybe mistype, validate, think,
 * redeem; wait out a 429 and try again; pass a step-up challenge.
 */
import { normalizeCode } from '../domain/codes.js';
import { discountFor } from '../domain/money.js';
import type { AttemptResult, Cart, ScenarioContext } from './context.js';
import type { Shopper } from './fakes.js';
import type { ScenarioInfo } from './model.js';
import type { Rng } from './prng.js';

export interface Prepared {
  /** Attempts the scenario expects to make (for the progress bar; adaptive actors may make more or fewer). */
  planned: number;
  /** Campaigns, codes, programs and history, through the admin API. Not counted as attempts. */
  setup(): Promise<void>;
  /** The traffic. Starts for every scenario at once, when every setup has finished. */
  run(): Promise<void>;
}

export interface Scenario extends ScenarioInfo {
  /** A few letters that go into this scenario's customer ids. */
  short: string;
  /** Builds the actors (synchronously, from the seeded streams) and returns the scenario's two phases. */
  prepare(ctx: ScenarioContext): Prepared;
}

/** `n` times in [fromMs, toMs], sorted. */
export function spread(rng: Rng, n: number, fromMs: number, toMs: number): number[] {
  return Array.from({ length: n }, () => rng.real(fromMs, toMs)).sort((a, b) => a - b);
}

const LOOK_ALIKE: Record<string, string> = {
  O: '0',
  '0': 'O',
  I: '1',
  '1': 'I',
  S: '5',
  '5': 'S',
  B: '8',
  '8': 'B',
  Z: '2',
  '2': 'Z',
  G: '6',
  U: 'V',
  V: 'U',
  M: 'N',
  N: 'M',
};
const KEYS = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** A plausible mistyping of `code` (a dropped, swapped, look-alike or wrong symbol), never `code` itself. */
export function typoOf(rng: Rng, code: string): string {
  const chars = [...code];
  const positions = chars.map((c, i) => (/[A-Za-z0-9]/.test(c) ? i : -1)).filter((i) => i >= 0);
  for (let tries = 0; tries < 20; tries++) {
    const out = [...chars];
    const i = rng.pick(positions);
    const kind = rng.weighted({ drop: 2, swap: 3, lookalike: 3, wrong: 2 });
    if (kind === 'drop') out.splice(i, 1);
    else if (kind === 'swap') {
      const j = positions[positions.indexOf(i) + 1];
      if (j === undefined) continue;
      [out[i], out[j]] = [out[j] as string, out[i] as string];
    } else if (kind === 'lookalike') {
      const alike = LOOK_ALIKE[(out[i] as string).toUpperCase()];
      if (!alike) continue;
      out[i] = alike;
    } else out[i] = rng.pick([...KEYS]);
    const typed = out.join('');
    if (normalizeCode(typed) !== normalizeCode(code)) return typed;
  }
  return `${code}X`;
}

/** Percentage of a subtotal in basis points, capped: the server's own rule (domain/money.ts). */
export function percentOff(subtotal: number, basisPoints: number, maxMinor: number | null): number {
  return discountFor(
    { type: 'percentage', basisPoints, maxDiscountMinor: maxMinor },
    { subtotalMinor: subtotal, shippingMinor: 0 },
  );
}

export interface CheckoutPlan {
  /** The actor's own stream (forked at build time), so concurrent actors never race for draws. */
  rng: Rng;
  code: string;
  cart: Cart;
  orderId: string;
  /** The discount the customer should get. */
  expectedMinor: number;
  /** Mistyped codes entered (and validated) first. */
  typos?: string[];
  /** Check the code before paying (default true). */
  validateFirst?: boolean;
  /** Think time between steps at the default span (ms range). */
  thinkMs?: [number, number];
}

/**
 * An honest customer's checkout. Mistypes are validated (and refused) first; then the right code is
 * validated and, after a moment, redeemed. A 429 is waited out (patiently); a challenge is passed. A
 * refusal of the right code ends the checkout (the customer pays full price or leaves). Returns the
 * redemption's result, or null when the customer gave up before redeeming.
 */
export async function honestCheckout(
  ctx: ScenarioContext,
  s: Shopper,
  plan: CheckoutPlan,
): Promise<AttemptResult | null> {
  const [lo, hi] = plan.thinkMs ?? [2_000, 10_000];
  const think = () => ctx.sleep(ctx.pace(plan.rng.int(lo, hi)));
  for (const typo of plan.typos ?? []) {
    const r = await ctx.patiently(() => ctx.validate(s, typo, plan.cart, { valueMinor: 0 }));
    // Told "cannot be used", the customer looks again and retypes; limited or blocked, they give up.
    if (r.record.outcome !== 'refused_business') return null;
    await think();
  }
  if (plan.validateFirst ?? true) {
    const v = await ctx.patiently(() => ctx.validate(s, plan.code, plan.cart, { valueMinor: 0 }));
    if (v.record.outcome !== 'allowed' && v.record.outcome !== 'held') return null;
    await think();
  }
  return ctx.patiently(() =>
    ctx.redeem(s, plan.code, plan.cart, plan.orderId, { valueMinor: plan.expectedMinor }),
  );
}

/** A cart worth between `lo` and `hi` minor units, in whole cents ending like real prices. */
export function cartOf(rng: Rng, lo: number, hi: number, shipping?: number): Cart {
  const subtotal = Math.round(rng.int(lo, hi) / 100) * 100 - rng.pick([0, 1, 5, 50]);
  return shipping === undefined ? { subtotal } : { subtotal, shipping };
}
