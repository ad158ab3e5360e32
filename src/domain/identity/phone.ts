/** Phone numbers: digits, with `+` when international; placeholder numbers are no signal. */
import { toFixedPoint } from './text.js';

const MIN_PHONE_DIGITS = 6;
/** E.164 caps a number, country code included, at 15 digits. */
const MAX_PHONE_DIGITS = 15;
const PHONE_SEPARATORS = /[\s\p{Pd}.()/]/gu;
const ASCENDING = '01234567890123456789';
const DESCENDING = '98765432109876543210';

/**
 * `0000000`, `1111111111`, `123456789`: what people type when a form insists on a phone. Linking by
 * them would merge every customer who did so.
 */
function isPlaceholderNumber(digits: string): boolean {
  return /^(\d)\1*$/.test(digits) || ASCENDING.includes(digits) || DESCENDING.includes(digits);
}

function phoneStep(raw: string): string | null {
  let text = raw.normalize('NFKC').trim();
  if (text.length === 0 || text.length > 64) return null;
  // `(+44) 20 …`: the country code is sometimes bracketed with its plus.
  text = text.replace(/^\(\s*\+/, '+');
  let international = false;
  if (text.startsWith('+')) {
    international = true;
    text = text.slice(1);
  } else if (text.startsWith('00')) {
    // `00` is the international call prefix nearly everywhere outside North America.
    international = true;
    text = text.slice(2);
  }
  // `+44 (0)20 7946 0958`: the `(0)` is the national trunk prefix, not dialled from abroad.
  if (international) text = text.replace(/^([\s\p{Pd}.]*\d{1,3})[\s\p{Pd}.]*\(0\)/u, '$1');
  const digits = text.replace(PHONE_SEPARATORS, '');
  if (!/^\d+$/.test(digits)) return null;
  if (digits.length < MIN_PHONE_DIGITS || digits.length > MAX_PHONE_DIGITS) return null;
  // No country calling code starts with 0, so `+0…` is a typo, not a number.
  if (international && digits.startsWith('0')) return null;
  if (isPlaceholderNumber(digits)) return null;
  return international ? `+${digits}` : digits;
}

/**
 * Digits only, with a leading `+` when the number carries its country code (`+` or `00` prefix).
 * A national number (`(555) 123-4567`) stays national: without the merchant's country we cannot
 * know its country code, so it does not link to the same number written internationally.
 */
export function normalizePhone(raw: string): string | null {
  if (raw.length > 256) return null;
  return toFixedPoint(raw, phoneStep);
}
