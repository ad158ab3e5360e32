/**
 * Customer tokens: how a storefront (an untrusted browser or app) proves which customer it acts for.
 * The merchant's backend, holding a checkout key, asks for a token for a logged-in customer
 * (`POST /v1/customer-tokens`) and hands it to the storefront. The token is signed with a key derived
 * from the server secret, expires within an hour at most, and lets its holder validate codes for that
 * customer, read that customer's wallet and points and convert that customer's points — nothing else,
 * and no other customer's.
 *
 * Format: `pgc_<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`; claims `c` (customer id), `e`
 * (expiry, Unix seconds) and optionally `t` (member tier, asserted by the merchant).
 */
import type { Clock } from '../lib/clock.js';
import { SignedTokens } from './signed-tokens.js';

const PREFIX = 'pgc_';
export const MAX_TOKEN_TTL_SECONDS = 3600;

export interface CustomerClaims {
  customerId: string;
  tier: string | undefined;
  expiresAt: Date;
}

export class CustomerTokens {
  private readonly tokens: SignedTokens;

  constructor(secret: Buffer, clock: Clock) {
    this.tokens = new SignedTokens(secret, 'customer-token', PREFIX, clock);
  }

  static looksLikeToken(credential: string): boolean {
    return credential.startsWith(PREFIX);
  }

  issue(customerId: string, ttlSeconds: number, tier?: string): { token: string; expiresAt: Date } {
    return this.tokens.issue(
      { c: customerId, ...(tier ? { t: tier } : {}) },
      Math.min(ttlSeconds, MAX_TOKEN_TTL_SECONDS),
    );
  }

  /** The claims of a valid, unexpired token; null for anything else (no reason is given out). */
  verify(token: string): CustomerClaims | null {
    const claims = this.tokens.verify(token);
    if (!claims || typeof claims.c !== 'string') return null;
    return {
      customerId: claims.c,
      tier: typeof claims.t === 'string' ? claims.t : undefined,
      expiresAt: new Date(claims.e * 1000),
    };
  }
}
