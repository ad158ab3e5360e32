/** Postal addresses: case, accents, punctuation and common abbreviations folded to one spelling. */
import type { TextFold } from './email.js';
import { toFixedPoint } from './text.js';

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

function addressTextStep(raw: string, fold: TextFold | undefined): string {
  let text = raw.normalize('NFKC').toLowerCase();
  // A Cyrillic `О` in `Оak St` reads as the Latin letter it imitates (UTS #39 skeleton; see confusables.ts).
  if (fold) text = fold(text).normalize('NFKC').toLowerCase();
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

function addressText(raw: string | undefined, fold: TextFold | undefined): string | null {
  if (raw === undefined) return '';
  if (raw.length > 2000) return null;
  return toFixedPoint(raw, (s) => addressTextStep(s, fold));
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
export function normalizeAddress(a: PostalAddress, fold?: TextFold): string | null {
  // The lines are joined before normalizing, not after: `Post` / `Office Box 1` and `Apt` / `#4`
  // across the break must read as one phrase, or the result would change when normalized again.
  const street = addressText(a.line2 === undefined ? a.line1 : `${a.line1}\n${a.line2}`, fold);
  const city = addressText(a.city, fold);
  const region = addressText(a.region, fold);
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
export function normalizeAddressText(raw: string, fold?: TextFold): string | null {
  const fields = raw.split(FIELD_SEPARATOR);
  if (fields.length === 5) {
    const [line1, city, region, postal_code, country] = fields as [string, string, string, string, string];
    return normalizeAddress({ line1, city, region, postal_code, country }, fold);
  }
  return normalizeAddress({ line1: raw }, fold);
}

/** Words that name a door inside a building; the values after them are what an abuser makes up. */
const INNER_DESIGNATORS = new Set(['unit', 'fl', 'room', 'rm']);
/** A unit's value: a number, a letter, or an ordinal (`4`, `b`, `3rd`). */
const UNIT_VALUE = /^(?:\d+|\p{L}|\d+(?:st|nd|rd|th))$/u;

/**
 * The building an address is in, whatever door inside it and in whatever word order: the canonical
 * address (normalizeAddress) with every unit, floor and room clause removed (`Apt 4B`, `#12`,
 * `Fl 3`) and the remaining street words sorted, so `12 Main St Apt 7` and `12 St Main #31` give one
 * key. It is linked beside the exact address: made-up unit numbers and transposed street words are
 * the cheapest way around a per-address link, and a real building's neighbours that this joins are
 * bounded by the shared-identifier limit (docs/abuse-defenses.md). A P.O. box keeps its number: the
 * box is the door. `place|` starts it, so it never equals an exact address. Null when the address is.
 */
export function addressPlaceKey(a: PostalAddress, fold?: TextFold): string | null {
  const exact = normalizeAddress(a, fold);
  if (exact === null) return null;
  const [street, ...rest] = exact.split(FIELD_SEPARATOR) as [string, ...string[]];
  const tokens = street.split(' ');
  const kept: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (INNER_DESIGNATORS.has(token)) {
      // The designator and up to two value tokens after it (`unit 4 b`).
      let j = i + 1;
      while (j < tokens.length && j <= i + 2 && UNIT_VALUE.test(tokens[j] as string)) j++;
      i = j - 1;
      continue;
    }
    kept.push(token);
  }
  // Nothing left but units (`Apt 4`): the exact address is all there is to go on.
  if (kept.length === 0) return null;
  return ['place', kept.sort().join(' '), ...rest].join(FIELD_SEPARATOR);
}
