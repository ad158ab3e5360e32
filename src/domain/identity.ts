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
 * Applies `step` until its output stops changing. Unicode steps (NFKC, case mapping, mark removal)
 * can expose a new composable sequence once punctuation between two code points is gone; iterating
 * makes the returned value a true fixed point, so stored values are stable under re-normalization.
 * Hostile input that still moves after a few rounds is refused rather than stored in a shifting form.
 */
function toFixedPoint(input: string, step: (s: string) => string | null): string | null {
  let current = step(input);
  for (let round = 0; round < 4 && current !== null; round++) {
    const next = step(current);
    if (next === current) return current;
    current = next;
  }
  return null;
}

const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;

// ---------------------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------------------

/** Google ignores dots in the local part and everything after `+`; both domains are one mailbox. */
const GMAIL_DOMAINS = new Set(['gmail.com', 'googlemail.com']);

/**
 * Providers that deliver `name+tag@` to `name@` but treat dots as significant. Only domains the
 * provider really runs belong here: stripping `+tag` on a domain where `+` is an ordinary character
 * would merge two different mailboxes. A missing country variant only means a tag is not stripped.
 */
const PLUS_TAG_DOMAINS = new Set([
  // Microsoft consumer mail
  'outlook.com',
  'outlook.at',
  'outlook.be',
  'outlook.cl',
  'outlook.co.id',
  'outlook.co.il',
  'outlook.co.nz',
  'outlook.co.th',
  'outlook.com.ar',
  'outlook.com.au',
  'outlook.com.br',
  'outlook.com.gr',
  'outlook.com.tr',
  'outlook.com.vn',
  'outlook.cz',
  'outlook.de',
  'outlook.dk',
  'outlook.es',
  'outlook.fr',
  'outlook.hu',
  'outlook.ie',
  'outlook.in',
  'outlook.it',
  'outlook.jp',
  'outlook.kr',
  'outlook.lv',
  'outlook.my',
  'outlook.ph',
  'outlook.pt',
  'outlook.sa',
  'outlook.sg',
  'outlook.sk',
  'hotmail.com',
  'hotmail.be',
  'hotmail.ca',
  'hotmail.ch',
  'hotmail.cl',
  'hotmail.co.jp',
  'hotmail.co.nz',
  'hotmail.co.th',
  'hotmail.co.uk',
  'hotmail.com.ar',
  'hotmail.com.au',
  'hotmail.com.br',
  'hotmail.com.mx',
  'hotmail.com.tr',
  'hotmail.de',
  'hotmail.dk',
  'hotmail.es',
  'hotmail.fi',
  'hotmail.fr',
  'hotmail.gr',
  'hotmail.it',
  'hotmail.nl',
  'hotmail.no',
  'hotmail.se',
  'live.com',
  'live.at',
  'live.be',
  'live.ca',
  'live.cl',
  'live.co.uk',
  'live.co.za',
  'live.com.ar',
  'live.com.au',
  'live.com.mx',
  'live.de',
  'live.dk',
  'live.fr',
  'live.ie',
  'live.in',
  'live.it',
  'live.jp',
  'live.nl',
  'live.no',
  'live.se',
  'msn.com',
  'passport.com',
  'windowslive.com',
  // Yahoo (not yahoo.co.jp: Yahoo Japan is a different company with its own rules)
  'yahoo.com',
  'yahoo.ca',
  'yahoo.co.id',
  'yahoo.co.in',
  'yahoo.co.nz',
  'yahoo.co.th',
  'yahoo.co.uk',
  'yahoo.com.ar',
  'yahoo.com.au',
  'yahoo.com.br',
  'yahoo.com.hk',
  'yahoo.com.mx',
  'yahoo.com.ph',
  'yahoo.com.sg',
  'yahoo.com.tw',
  'yahoo.com.vn',
  'yahoo.de',
  'yahoo.dk',
  'yahoo.es',
  'yahoo.fr',
  'yahoo.gr',
  'yahoo.ie',
  'yahoo.in',
  'yahoo.it',
  'yahoo.no',
  'yahoo.se',
  'ymail.com',
  'rocketmail.com',
  // Apple
  'icloud.com',
  'me.com',
  'mac.com',
]);

const MAX_EMAIL_LENGTH = 254;
const MAX_LOCAL_LENGTH = 64;
/** RFC 5322 atext plus letters and digits of any script (RFC 6531 internationalized addresses). */
const LOCAL_ATOM = /^[\p{L}\p{N}\p{M}!#$%&'*+/=?^_`{|}~-]+$/u;
const DOMAIN_LABEL = /^[\p{L}\p{N}\p{M}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;

/** Dot-atom: atoms joined by single dots, so no leading, trailing or doubled dot. */
function isDotAtom(local: string): boolean {
  return local.split('.').every((atom) => LOCAL_ATOM.test(atom));
}

function isDomain(domain: string): boolean {
  if (domain.length > 253) return false;
  const labels = domain.split('.');
  // A domain needs a dot; an all-digit last label means an IP address, which is not a mail domain.
  if (labels.length < 2 || /^\d+$/.test(labels[labels.length - 1] as string)) return false;
  return labels.every((label) => label.length <= 63 && DOMAIN_LABEL.test(label));
}

function emailStep(raw: string): string | null {
  const address = raw.normalize('NFKC').trim().toLowerCase();
  if (address.length === 0 || address.length > MAX_EMAIL_LENGTH || CONTROL.test(address)) return null;
  const parts = address.split('@');
  if (parts.length !== 2) return null;
  let [local, domain] = parts as [string, string];
  // `gmail.com.` is the same domain written as a fully qualified name.
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (local.length === 0 || local.length > MAX_LOCAL_LENGTH || !isDomain(domain)) return null;
  // Quoted local parts and spaces are legal in RFC 5322 but no consumer mailbox uses them; refusing
  // them keeps one spelling per mailbox.
  if (!isDotAtom(local) && !GMAIL_DOMAINS.has(domain)) return null;

  if (GMAIL_DOMAINS.has(domain)) {
    // Gmail delivers every dot and +tag variant to one inbox, so they must link: keep the part before
    // the first `+`, drop every dot, and write the domain one way.
    local = (local.split('+')[0] as string).replaceAll('.', '');
    domain = 'gmail.com';
    if (!LOCAL_ATOM.test(local)) return null;
  } else if (PLUS_TAG_DOMAINS.has(domain)) {
    local = local.split('+')[0] as string;
    // `john.+x@outlook.com` would leave `john.`, which is not a mailbox name.
    if (!isDotAtom(local)) return null;
  }
  return `${local}@${domain}`;
}

/**
 * The mailbox an address delivers to: lower case; Gmail dots and `+tags` removed and googlemail.com
 * written gmail.com; `+tags` removed for Microsoft, Yahoo and Apple mail; the local part of any other
 * domain kept as typed (only lower-cased), since we cannot know how that server reads it.
 */
export function normalizeEmail(raw: string): string | null {
  if (raw.length > MAX_EMAIL_LENGTH * 4) return null;
  return toFixedPoint(raw, emailStep);
}

// ---------------------------------------------------------------------------------------------------
// Phone
// ---------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------
// Device and payment fingerprints
// ---------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------
// Postal address
// ---------------------------------------------------------------------------------------------------

export interface PostalAddress {
  line1: string;
  line2?: string;
  city?: string;
  region?: string;
  postal_code?: string;
  country?: string;
}

/**
 * Each group of words naming the same thing, mapped to one form. The short postal form (USPS
 * Publication 28 style) wins, because it is what most people type. Every canonical form maps to
 * itself, which keeps the mapping idempotent.
 *
 * Secondary-unit designators (apartment, apt, unit, suite, ste, flat, `#`) all become `unit`: they
 * name the same thing, `12 Main St #4` and `12 Main St Apt 4` are one door, and swapping designators
 * is the cheapest way to dodge a per-address cap. Floor stays separate: `Fl 4` is not `Unit 4`.
 */
const WORD_GROUPS: readonly (readonly [canonical: string, ...variants: string[]])[] = [
  ['st', 'street', 'saint'],
  ['ave', 'avenue', 'av', 'aven', 'avn'],
  ['rd', 'road'],
  ['blvd', 'boulevard', 'boul', 'blv'],
  ['dr', 'drive', 'drv'],
  ['ln', 'lane'],
  ['ct', 'court', 'crt'],
  ['pl', 'place'],
  ['sq', 'square', 'sqr'],
  ['ter', 'terrace', 'terr'],
  ['cir', 'circle'],
  ['cres', 'crescent'],
  ['hwy', 'highway', 'hiway'],
  ['pkwy', 'parkway', 'pky'],
  ['fwy', 'freeway'],
  ['expy', 'expressway'],
  ['trl', 'trail'],
  ['hts', 'heights'],
  ['ctr', 'center', 'centre'],
  ['bldg', 'building'],
  ['mt', 'mount'],
  ['ft', 'fort'],
  ['pt', 'point'],
  ['unit', 'apartment', 'apt', 'suite', 'ste', 'flat'],
  ['fl', 'floor', 'flr'],
  ['n', 'north'],
  ['s', 'south'],
  ['e', 'east'],
  ['w', 'west'],
  ['ne', 'northeast'],
  ['nw', 'northwest'],
  ['se', 'southeast'],
  ['sw', 'southwest'],
];
const CANONICAL_WORD = new Map(
  WORD_GROUPS.flatMap(([canonical, ...variants]) => [
    [canonical, canonical] as const,
    ...variants.map((variant) => [variant, canonical] as const),
  ]),
);

/** Latin letters that no Unicode decomposition reaches, written the way people type them in ASCII. */
const LATIN_LETTERS: Readonly<Record<string, string>> = { ß: 'ss', æ: 'ae', œ: 'oe', ø: 'o', ł: 'l', đ: 'd' };
const ORDINAL = /^\d+(?:st|nd|rd|th)$/;

/** `4b`, `4-b` and `4 b` are one unit, and `apt4` is `apt 4`; ordinals (`1st`, `3rd`) stay whole. */
function splitLettersFromDigits(token: string): string[] {
  return token
    .replace(/(\p{L})(\d)/gu, '$1 $2')
    .split(' ')
    .flatMap((part) => (ORDINAL.test(part) ? [part] : part.replace(/(\d)(\p{L})/gu, '$1 $2').split(' ')));
}

function canonicalWords(tokens: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    // `P.O. Box`, `P O Box`, `Post Office Box` and `POBox` are one thing.
    if (token === 'pobox') {
      out.push('po', 'box');
      continue;
    }
    if (token === 'post' && tokens[i + 1] === 'office' && tokens[i + 2] === 'box') {
      out.push('po');
      i += 1;
      continue;
    }
    if (token === 'p' && tokens[i + 1] === 'o' && tokens[i + 2] === 'box') {
      out.push('po');
      i += 1;
      continue;
    }
    // German `Hauptstraße`, `Hauptstrasse` and `Hauptstr.` are one street.
    const word = token.endsWith('strasse') ? `${token.slice(0, -'strasse'.length)}str` : token;
    const canonical = CANONICAL_WORD.get(word) ?? word;
    // `Apt #4` says "unit" twice.
    if (canonical === 'unit' && out[out.length - 1] === 'unit') continue;
    out.push(canonical);
  }
  return out;
}

function addressTextStep(raw: string): string {
  let text = raw.normalize('NFKC').toLowerCase();
  // Accents dropped from Latin letters only (`Église` = `Eglise`, what people type without the key);
  // marks on other scripts carry meaning (a Devanagari virama, a Cyrillic й) and stay.
  text = text
    .normalize('NFD')
    .replace(/([a-z])[\u0300-\u036f]+/g, '$1')
    .normalize('NFC')
    .replace(/[ßæœøłđ]/g, (ch) => LATIN_LETTERS[ch] ?? ch);
  text = text
    // `N.W.` and `P.O.`: dots inside an initialism go, so they read as `nw` and `po`.
    .replace(/(?<![\p{L}\p{N}])(\p{L})\.(?=\p{L}(?![\p{L}\p{N}]))/gu, '$1')
    // `O'Connell` = `OConnell`, not `O Connell`.
    .replace(/['’‘ʼ`´]/g, '')
    .replace(/#/g, ' unit ')
    .replace(/[^\p{L}\p{N}\p{M}]+/gu, ' ');
  const tokens = text
    .split(' ')
    .filter((t) => t.length > 0)
    .flatMap(splitLettersFromDigits);
  return canonicalWords(tokens).join(' ');
}

function addressText(raw: string | undefined): string | null {
  if (raw === undefined) return '';
  if (raw.length > 2000) return null;
  return toFixedPoint(raw, addressTextStep);
}

const COUNTRY_ALIASES: Readonly<Record<string, string>> = {
  USA: 'US',
  UNITEDSTATES: 'US',
  UNITEDSTATESOFAMERICA: 'US',
  UK: 'GB',
  UNITEDKINGDOM: 'GB',
  GREATBRITAIN: 'GB',
};

function countryCode(raw: string | undefined): string | null {
  if (raw === undefined) return '';
  if (raw.length > 100) return null;
  return toFixedPoint(raw, (text) => {
    const letters = text
      .normalize('NFKC')
      .toUpperCase()
      .replace(/[^\p{L}]/gu, '');
    return COUNTRY_ALIASES[letters] ?? letters;
  });
}

function postalCode(raw: string | undefined, country: string): string | null {
  if (raw === undefined) return '';
  if (raw.length > 100) return null;
  return toFixedPoint(raw, (text) => {
    const code = text
      .normalize('NFKC')
      .toUpperCase()
      .replace(/[^\p{L}\p{N}]/gu, '');
    // A ZIP+4 names a delivery segment inside the ZIP; with or without it the address is the same door.
    return country === 'US' && /^\d{9}$/.test(code) ? code.slice(0, 5) : code;
  });
}

const FIELD_SEPARATOR = '|';

/**
 * One canonical string: `street|city|region|postal_code|country`. Street is line1 and line2 joined
 * (`Apt 4` in either line is the same door), lower case, NFKC, accents off Latin letters, punctuation
 * gone, whitespace collapsed, common words in one form (see WORD_GROUPS). Postal code is upper case
 * with no spaces or hyphens; country is upper case (ISO 3166 alpha-2 expected; USA and UK accepted).
 * Null when there is no street, since a city alone is shared by strangers.
 */
export function normalizeAddress(a: PostalAddress): string | null {
  // The lines are joined before normalizing, not after: `Post` / `Office Box 1` and `Apt` / `#4`
  // across the break must read as one phrase, or the result would change when normalized again.
  const street = addressText(a.line2 === undefined ? a.line1 : `${a.line1}\n${a.line2}`);
  const city = addressText(a.city);
  const region = addressText(a.region);
  const country = countryCode(a.country);
  if (street === null || street.length === 0 || city === null || region === null || country === null) {
    return null;
  }
  const postal = postalCode(a.postal_code, country);
  if (postal === null) return null;
  return [street, city, region, postal, country].join(FIELD_SEPARATOR);
}

/**
 * An address passed as one string: its own canonical form (`street|city|region|postal|country`,
 * so re-normalizing a stored value is a no-op) or otherwise one free-text line.
 */
function normalizeAddressText(raw: string): string | null {
  const fields = raw.split(FIELD_SEPARATOR);
  if (fields.length === 5) {
    const [line1, city, region, postal_code, country] = fields as [string, string, string, string, string];
    return normalizeAddress({ line1, city, region, postal_code, country });
  }
  return normalizeAddress({ line1: raw });
}

// ---------------------------------------------------------------------------------------------------
// IP
// ---------------------------------------------------------------------------------------------------

/** Strict dotted quad: four decimal octets, no leading zeros (`010` is octal to some parsers). */
function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    octets.push(value);
  }
  return octets;
}

type Ipv6Groups = [number, number, number, number, number, number, number, number];

/** Eight 16-bit groups, from full, `::`-compressed or IPv4-suffixed text (RFC 4291 section 2.2). */
function parseIPv6(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (part: string, allowIPv4Tail: boolean): number[] | null => {
    if (part === '') return [];
    const pieces = part.split(':');
    const groups: number[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string;
      if (allowIPv4Tail && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (v4 === null) return null;
        const [a, b, c, d] = v4 as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(piece)) return null;
        groups.push(Number.parseInt(piece, 16));
      }
    }
    return groups;
  };
  if (halves.length === 1) {
    const groups = parseGroups(text, true);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  const head = parseGroups(halves[0] as string, false);
  const tail = parseGroups(halves[1] as string, true);
  // `::` stands for at least one zero group.
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function prefix64(groups: number[]): string {
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/**
 * The key a rate limit counts under: an IPv4 address as `a.b.c.d`; an IPv6 address as its /64, since
 * one subscriber is handed a whole /64 and can rotate through it for free, written as four lower-case
 * groups without leading zeros (`2001:db8:0:1::/64`). An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`,
 * what a dual-stack socket reports for an IPv4 client) is that IPv4 address, or every IPv4 client
 * would share one /64. A zone id (`%eth0`) is dropped; a /64 key is accepted as input and returned
 * unchanged. No ports, brackets or other prefix lengths: null for anything else.
 */
export function ipRateKey(raw: string): string | null {
  const text = raw.trim();
  if (text.length === 0 || text.length > 100) return null;
  if (!text.includes(':')) {
    const v4 = parseIPv4(text);
    return v4 === null ? null : v4.join('.');
  }
  const isPrefix = text.endsWith('/64');
  let address = isPrefix ? text.slice(0, -3) : text;
  const zone = address.indexOf('%');
  if (zone !== -1) {
    if (isPrefix || !/^[\w.~-]+$/.test(address.slice(zone + 1))) return null;
    address = address.slice(0, zone);
  }
  const groups = parseIPv6(address);
  if (groups === null) return null;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as Ipv6Groups;
  if (!isPrefix && g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    return [g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff].join('.');
  }
  return prefix64(groups);
}

// ---------------------------------------------------------------------------------------------------

/** The canonical form of one identifier of the given type; null when the raw value is not one. */
export function normalizeIdentifier(type: IdentifierType, raw: string): string | null {
  switch (type) {
    case 'email':
      return normalizeEmail(raw);
    case 'phone':
      return normalizePhone(raw);
    case 'device':
      return normalizeDeviceId(raw);
    case 'payment':
      return normalizePaymentFingerprint(raw);
    case 'address':
      return normalizeAddressText(raw);
    case 'ip':
      return ipRateKey(raw);
  }
}
