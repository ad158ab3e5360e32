/**
 * Console session ids and their CSRF tokens. A session id is 256 random bits, handed only to the
 * browser (in an HttpOnly cookie); the database keeps its SHA-256. The CSRF token is an HMAC of the
 * session id under a key of its own: bound to that one session, never stored, and useless to a page
 * on another site, which can neither read it nor derive it.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { deriveKey } from './server-secret.js';

const SESSION_PREFIX = 'pgs_';
const SESSION_SHAPE = /^pgs_[A-Za-z0-9_-]{43}$/;

export function newSessionId(): string {
  return SESSION_PREFIX + randomBytes(32).toString('base64url');
}

/** A cookie value that can be a session id at all (anything else is refused without a lookup). */
export function looksLikeSessionId(value: string): boolean {
  return SESSION_SHAPE.test(value);
}

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export class CsrfTokens {
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    this.key = deriveKey(secret, 'console-csrf');
  }

  tokenFor(sessionId: string): string {
    return createHmac('sha256', this.key).update(sessionId).digest('base64url');
  }

  matches(sessionId: string, given: string | undefined): boolean {
    if (given === undefined) return false;
    const expected = Buffer.from(this.tokenFor(sessionId));
    const actual = Buffer.from(given);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
}
