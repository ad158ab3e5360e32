/**
 * API key secrets: 256 random bits shown once; only their SHA-256 is stored. A slow hash adds nothing
 * against a key with that much entropy, and keeps the check on every request cheap.
 */
import { createHash, randomBytes } from 'node:crypto';

export const API_KEY_PREFIX = 'pgk_';

export function newApiKeySecret(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A credential that can be an API key at all (anything else is refused without a lookup). */
export function looksLikeApiKey(secret: string): boolean {
  return secret.startsWith(API_KEY_PREFIX) && secret.length <= 200;
}
