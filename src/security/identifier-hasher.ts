/**
 * Identifiers (email, phone, device, payment fingerprint, address, IP) are stored and compared only as
 * keyed hashes, so a leaked database holds no personal data and cannot be reversed by hashing a list
 * of known emails or phone numbers: that needs the server secret, which lives outside the table.
 * Equal normalized values give equal hashes, which is all linking needs.
 */
import { createHmac } from 'node:crypto';
import { IDENTIFIER_TYPES, type IdentifierType, normalizeIdentifier } from '../domain/identity/index.js';
import { confusableFold } from './confusables.js';
import { deriveKey } from './server-secret.js';

/** 22 base64url characters carry 132 bits: collisions stay out of reach for any realistic volume. */
const HASH_LENGTH = 22;

export class IdentifierHasher {
  readonly #key: Buffer;

  constructor(secret: Buffer) {
    // An empty key makes every hash computable by anyone, which is the same as storing the raw value.
    if (secret.length === 0) throw new RangeError('identifier hashing needs a non-empty server secret');
    this.#key = deriveKey(secret, 'identifier');
  }

  /**
   * HMAC-SHA256(key, `${type}:${normalized}`), base64url, truncated to 22 characters. The type is in
   * the message so that one string seen as two kinds (a device id equal to a payment fingerprint) never
   * links two people; type names hold no `:`, so the message splits one way only.
   */
  hash(type: IdentifierType, normalized: string): string {
    // Callers outside the type checker (JSON, CEL rules) could pass any string as the type.
    if (!IDENTIFIER_TYPES.includes(type)) throw new RangeError(`unknown identifier type: ${String(type)}`);
    return createHmac('sha256', this.#key)
      .update(`${type}:${normalized}`, 'utf8')
      .digest('base64url')
      .slice(0, HASH_LENGTH);
  }

  /**
   * A normalized coupon code as a counter key: keyed, so a counter store (Redis) never holds a code or
   * a plain hash of one, which a short code space would give back. No identifier type is named
   * `code-attempt`, so it never equals an identifier's hash.
   */
  codeKey(normalizedCode: string): string {
    return createHmac('sha256', this.#key)
      .update(`code-attempt:${normalizedCode}`, 'utf8')
      .digest('base64url')
      .slice(0, HASH_LENGTH);
  }

  /** Normalize then hash; null when the raw value is not an identifier of that type. */
  fromRaw(type: IdentifierType, raw: string): string | null {
    const normalized = normalizeIdentifier(type, raw, confusableFold);
    return normalized === null ? null : this.hash(type, normalized);
  }
}
