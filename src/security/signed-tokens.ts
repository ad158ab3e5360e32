/**
 * Short-lived signed tokens: `<prefix><base64url(JSON claims)>.<base64url(HMAC-SHA256)>`, signed with a
 * key derived from the server secret for one purpose (a token made for one purpose never verifies for
 * another). Claims carry their expiry `e` in Unix seconds. Verification answers null for anything
 * wrong — bad shape, bad signature, expired — and never says which.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { deriveKey } from './server-secret.js';

export class SignedTokens {
  private readonly key: Buffer;

  constructor(
    secret: Buffer,
    purpose: string,
    private readonly prefix: string,
    private readonly clock: Clock,
  ) {
    this.key = deriveKey(secret, purpose);
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  issue(claims: Record<string, unknown>, ttlSeconds: number): { token: string; expiresAt: Date } {
    const exp = Math.floor(this.clock.now().getTime() / 1000) + ttlSeconds;
    const payload = Buffer.from(JSON.stringify({ ...claims, e: exp })).toString('base64url');
    return { token: `${this.prefix}${payload}.${this.sign(payload)}`, expiresAt: new Date(exp * 1000) };
  }

  /** The claims of a valid, unexpired token (with `e`); null for anything else. */
  verify(token: string): (Record<string, unknown> & { e: number }) | null {
    if (!token.startsWith(this.prefix) || token.length > 2048) return null;
    const [payload, signature, extra] = token.slice(this.prefix.length).split('.');
    if (!payload || !signature || extra !== undefined) return null;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    if (claims === null || typeof claims !== 'object') return null;
    const e = (claims as { e?: unknown }).e;
    if (typeof e !== 'number' || e * 1000 <= this.clock.now().getTime()) return null;
    return claims as Record<string, unknown> & { e: number };
  }
}
