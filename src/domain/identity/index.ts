/**
 * Identity signals from a checkout context (email, phone, device, payment instrument, shipping
 * address, IP) reduced to canonical text, before they are hashed and compared.
 *
 * Customers who share one of these values are later linked into one person, and every per-person cap
 * hangs off that link. So each function has two duties that pull against each other:
 * - trivially different spellings of the same thing map to one value, or an abuser defeats a cap by
 *   writing `J.Doe+2@googlemail.com` instead of `jdoe@gmail.com`, or `Apt. #4` instead of `apt 4`;
 * - different things never map to one value, or strangers are merged and refused each other's
 *   coupons. Where a rule could do that (a placeholder device id, a `0000000` phone) the function
 *   returns null: a missing signal costs less than a false link.
 *
 * Every function returns null for anything that is not a value of its kind, and its output is a fixed
 * point: normalizing a normalized value returns it unchanged, so stored values can be re-derived.
 * Pure: no I/O, no clock, no Node imports.
 */
import { normalizeAddressText } from './address.js';
import { normalizeDeviceId, normalizePaymentFingerprint } from './device.js';
import { normalizeEmail, type TextFold } from './email.js';
import { ipRateKey } from './ip.js';
import { normalizePhone } from './phone.js';

export { addressPlaceKey, normalizeAddress, type PostalAddress } from './address.js';
export { confusableSkeleton, type PrototypeLookup } from './confusables.js';
export { normalizeDeviceId, normalizePaymentFingerprint } from './device.js';
export { emailDomain, MAIL_PROVIDERS, type MailProvider, normalizeEmail, type TextFold } from './email.js';
export {
  type CidrResult,
  type IpAddress,
  type IpRange,
  inRange,
  ipAddressText,
  ipRateKey,
  parseCidr,
  parseIpAddress,
} from './ip.js';
export { normalizePhone } from './phone.js';

export type IdentifierType = 'email' | 'phone' | 'device' | 'payment' | 'address' | 'ip';
export const IDENTIFIER_TYPES: readonly IdentifierType[] = [
  'email',
  'phone',
  'device',
  'payment',
  'address',
  'ip',
];

/**
 * The canonical form of one identifier of the given type; null when the raw value is not one. `fold`
 * maps look-alike characters to their prototype in emails and addresses (confusables.ts).
 */
export function normalizeIdentifier(type: IdentifierType, raw: string, fold?: TextFold): string | null {
  switch (type) {
    case 'email':
      return normalizeEmail(raw, fold);
    case 'phone':
      return normalizePhone(raw);
    case 'device':
      return normalizeDeviceId(raw);
    case 'payment':
      return normalizePaymentFingerprint(raw);
    case 'address':
      return normalizeAddressText(raw, fold);
    case 'ip':
      return ipRateKey(raw);
  }
}
