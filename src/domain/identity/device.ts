/** Device ids and payment fingerprints: opaque values, minus the placeholders many clients send. */
import { CONTROL } from './text.js';

const MAX_OPAQUE_LENGTH = 200;

/**
 * Values that many devices report at once: the zeroed iOS advertising id when tracking is off, the
 * Android ID that a batch of Android 2.2 phones shared, the fixed MAC Android has reported since 6.0,
 * and what SDKs send when they have nothing. Linking by them would merge strangers.
 */
const SHARED_PLACEHOLDERS = new Set([
  '9774d56d682e549c',
  '02:00:00:00:00:00',
  'unknown',
  'null',
  'undefined',
  'none',
  'nil',
  'n/a',
  'na',
  'default',
  'test',
]);

function isPlaceholder(value: string): boolean {
  return /^[0\s:.-]*$/.test(value) || SHARED_PLACEHOLDERS.has(value.toLowerCase());
}

function opaqueValue(raw: string): string | null {
  const value = raw.trim();
  if (value.length === 0 || value.length > MAX_OPAQUE_LENGTH || CONTROL.test(value)) return null;
  return isPlaceholder(value) ? null : value;
}

const UUID =
  /^(?:urn:uuid:)?(\{)?([0-9a-f]{8})(-?)([0-9a-f]{4})\3([0-9a-f]{4})\3([0-9a-f]{4})\3([0-9a-f]{12})(\})?$/i;

/**
 * A device id as the client SDK reports it, trimmed. Case is folded only where the id's own format
 * says case carries no meaning: a UUID (iOS sends `E621E1F8-…`, browsers `e621e1f8-…`; braces,
 * `urn:uuid:` and missing hyphens are accepted) becomes lower-case 8-4-4-4-12, and an all-hex id
 * (Android ID) becomes lower case. Anything else is opaque — often base64, where `aB` and `Ab` are
 * different devices — and kept as sent. Placeholder ids shared by many devices return null.
 */
export function normalizeDeviceId(raw: string): string | null {
  const value = opaqueValue(raw);
  if (value === null) return null;
  const uuid = UUID.exec(value);
  // Braces must pair: `{…` alone is not a UUID spelling but an opaque string.
  if (uuid && Boolean(uuid[1]) === Boolean(uuid[8])) {
    const canonical = [uuid[2], uuid[4], uuid[5], uuid[6], uuid[7]].join('-').toLowerCase();
    return isPlaceholder(canonical) ? null : canonical;
  }
  if (/^[0-9a-f]+$/i.test(value)) return value.toLowerCase();
  return value;
}

/**
 * A payment instrument fingerprint from the payment provider (Stripe's card `fingerprint`, Adyen's
 * `shopperReference`-independent card hash, …), trimmed and otherwise kept exactly: these are
 * case-sensitive tokens. Callers from more than one provider should prefix the provider name, since
 * two providers' fingerprints live in different namespaces.
 */
export function normalizePaymentFingerprint(raw: string): string | null {
  return opaqueValue(raw);
}
