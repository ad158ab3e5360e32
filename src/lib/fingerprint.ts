import { createHash } from 'node:crypto';

/**
 * What makes two requests "the same request" for an idempotency key: a digest of the fields that
 * define the operation. A repeat whose digest differs is a different request reusing the key.
 */
export function requestFingerprint(fields: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(fields)).digest('base64url');
}
