/**
 * Customer tokens: how a storefront (an untrusted browser or app) proves which customer it acts for.
 * The merchant's backend, holding a checkout key, asks for a token for a logged-in customer
 * (`POST /v1/customer-tokens`) and hands it to the storefront. The token is signed with a key derived
 * from the server secret, expires within minutes, and lets its holder read that customer's wallet and
 * points and convert that customer's points — nothing else, and no other customer's.
 *
 * Format: `pgc_<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`; claims `c` (customer id), `e`
 * (expiry, Unix seconds) and optionally `t` (member tier, asserted by the merchant).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from './context.js';
import { deriveKey } from './secrets.js';

const PREFIX = 'pgc_';
export const MAX_TOKEN_TTL_SECONDS = 3600;

export interface CustomerClaims {
  customerId: string;
  tier: string | undefined;
  expiresAt: Date;
}

export class CustomerTokens {
  private readonly key: Buffer;

  constructor(
    secret: Buffer,
    private readonly clock: Clock,
  ) {
    this.key = deriveKey(secret, 'customer-token');
  }

  static looksLikeToken(credential: string): boolean {
    return credential.startsWith(PREFIX);
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  issue(customerId: string, ttlSeconds: number, tier?: string): { token: string; expiresAt: Date } {
    const exp = Math.floor(this.clock.now().getTime() / 1000) + Math.min(ttlSeconds, MAX_TOKEN_TTL_SECONDS);
    const payload = Buffer.from(
      JSON.stringify({ c: customerId, e: exp, ...(tier ? { t: tier } : {}) }),
    ).toString('base64url');
    return { token: `${PREFIX}${payload}.${this.sign(payload)}`, expiresAt: new Date(exp * 1000) };
  }

  /** The claims of a valid, unexpired token; null for anything else (no reason is given out). */
  verify(token: string): CustomerClaims | null {
    if (!token.startsWith(PREFIX) || token.length > 1024) return null;
    const [payload, signature, extra] = token.slice(PREFIX.length).split('.');
    if (!payload || !signature || extra !== undefined) return null;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    let claims: { c?: unknown; e?: unknown; t?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    if (typeof claims.c !== 'string' || typeof claims.e !== 'number') return null;
    if (claims.e * 1000 <= this.clock.now().getTime()) return null;
    return {
      customerId: claims.c,
      tier: typeof claims.t === 'string' ? claims.t : undefined,
      expiresAt: new Date(claims.e * 1000),
    };
  }
}
