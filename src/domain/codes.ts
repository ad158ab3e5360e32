/**
 * Coupon code text: normalization, the generated-code alphabet and its check character.
 *
 * Customers read codes off screens and type them in, so matching ignores case and separators
 * (`sum-mer 25` is `SUMMER25`), and generated codes use an alphabet without the characters people
 * confuse (0/O, 1/I). A generated code ends with a Luhn mod 32 check character: every single mistyped
 * character and most swaps of neighbours fail the check, so they are refused before any database read.
 */

/** 32 symbols = exactly 5 bits each, so one random byte masked to 5 bits picks a symbol with no bias. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
const SYMBOL_VALUE = new Map([...CODE_ALPHABET].map((ch, i) => [ch, i] as const));
const N = CODE_ALPHABET.length;

export const MAX_CODE_LENGTH = 64;
/** 8 symbols x 5 bits = 40 bits, the least randomness a generated code may carry. */
export const MIN_RANDOM_LENGTH = 8;
export const MAX_RANDOM_LENGTH = 32;
export const MAX_PREFIX_LENGTH = 16;

const SEPARATORS = /[\s\-_.·/]+/gu;

/**
 * The canonical form under which codes are stored and compared: NFKC (full-width digits become
 * ASCII), upper case, separators removed. Returns null for anything that cannot be a code, so hostile
 * input (control characters, emoji, megabytes) never reaches the database.
 */
export function normalizeCode(input: string): string | null {
  if (input.length > MAX_CODE_LENGTH * 4) return null;
  const normalized = input.normalize('NFKC').toUpperCase().replace(SEPARATORS, '');
  if (normalized.length === 0 || normalized.length > MAX_CODE_LENGTH) return null;
  return /^[A-Z0-9]+$/.test(normalized) ? normalized : null;
}

function luhnSum(symbols: string, startFactor: 1 | 2): number | null {
  let factor = startFactor;
  let sum = 0;
  for (let i = symbols.length - 1; i >= 0; i--) {
    const value = SYMBOL_VALUE.get(symbols[i] as string);
    if (value === undefined) return null;
    let addend = factor * value;
    addend = Math.floor(addend / N) + (addend % N);
    sum += addend;
    factor = factor === 2 ? 1 : 2;
  }
  return sum;
}

/** The Luhn mod 32 check symbol for a body made of CODE_ALPHABET symbols. */
export function checkCharacter(body: string): string {
  const sum = luhnSum(body, 2);
  if (sum === null) throw new RangeError('body has a symbol outside the code alphabet');
  return CODE_ALPHABET[(N - (sum % N)) % N] as string;
}

/** True when the last symbol is the correct check symbol for the ones before it. */
export function hasValidCheckCharacter(bodyWithCheck: string): boolean {
  if (bodyWithCheck.length < 2) return false;
  const sum = luhnSum(bodyWithCheck, 1);
  return sum !== null && sum % N === 0;
}

/** The shape of a batch of generated codes: `PREFIX` + `randomLength` symbols + 1 check symbol. */
export interface CodePattern {
  prefix: string;
  randomLength: number;
}

export function patternLength(pattern: CodePattern): number {
  return pattern.prefix.length + pattern.randomLength + 1;
}

const ALPHABET_ONLY = new RegExp(`^[${CODE_ALPHABET}]+$`);

/**
 * Whether a normalized code has the shape of a batch: its prefix, its length, and nothing after the
 * prefix outside the code alphabet (a generated code never holds 0, 1, O or I, so a text that does
 * — every loyalty coupon's point amount — can never be mistaken for one).
 */
export function hasPatternShape(normalized: string, pattern: CodePattern): boolean {
  return (
    normalized.length === patternLength(pattern) &&
    normalized.startsWith(pattern.prefix) &&
    ALPHABET_ONLY.test(normalized.slice(pattern.prefix.length))
  );
}

/**
 * Whether a normalized code with the batch's shape could have been generated for it. A code with
 * the shape but a wrong check symbol was mistyped or guessed: it cannot exist, and is refused
 * without a database read.
 */
export function isPlausibleForPattern(normalized: string, pattern: CodePattern): boolean {
  return (
    hasPatternShape(normalized, pattern) && hasValidCheckCharacter(normalized.slice(pattern.prefix.length))
  );
}

export type RandomBytes = (size: number) => Uint8Array;

/**
 * One generated code, normalized. `randomBytes` must be a CSPRNG (node:crypto randomBytes): the
 * randomness is what makes a code unguessable; the check symbol adds none.
 */
export function generateCode(pattern: CodePattern, randomBytes: RandomBytes): string {
  const bytes = randomBytes(pattern.randomLength);
  let body = '';
  for (let i = 0; i < pattern.randomLength; i++) body += CODE_ALPHABET[(bytes[i] as number) & 31];
  return pattern.prefix + body + checkCharacter(body);
}

/**
 * `count` generated codes, normalized, from one draw of `count × randomLength` bytes: a million codes
 * cost one call into the CSPRNG, not a million. Each symbol takes one byte's low 5 bits, as in
 * generateCode, so the codes are as unguessable; duplicates are possible and left to the caller.
 */
export function generateCodes(pattern: CodePattern, count: number, randomBytes: RandomBytes): string[] {
  const length = pattern.randomLength;
  const bytes = randomBytes(count * length);
  const codes = new Array<string>(count);
  for (let c = 0; c < count; c++) {
    const start = c * length;
    let body = '';
    // Luhn mod 32 over the symbol values, from the rightmost symbol (factor 2) leftwards.
    let sum = 0;
    let factor = length % 2 === 0 ? 1 : 2;
    for (let i = 0; i < length; i++) {
      const value = (bytes[start + i] as number) & 31;
      body += CODE_ALPHABET[value];
      const addend = factor * value;
      sum += (addend >> 5) + (addend & 31);
      factor = 3 - factor;
    }
    codes[c] = pattern.prefix + body + CODE_ALPHABET[(N - (sum % N)) % N];
  }
  return codes;
}

/** How a generated code is shown: the prefix set off by a hyphen, the rest in groups of four. */
export function displayGeneratedCode(normalized: string, pattern: CodePattern): string {
  let shown = pattern.prefix;
  for (let i = pattern.prefix.length; i < normalized.length; i += 4) {
    shown += (shown.length > 0 ? '-' : '') + normalized.slice(i, i + 4);
  }
  return shown;
}

export type PatternProblem = 'prefix_invalid' | 'random_length_out_of_range';

export function checkPattern(pattern: CodePattern): PatternProblem | null {
  if (pattern.prefix.length > MAX_PREFIX_LENGTH || !/^[A-Z0-9]*$/.test(pattern.prefix))
    return 'prefix_invalid';
  if (
    !Number.isInteger(pattern.randomLength) ||
    pattern.randomLength < MIN_RANDOM_LENGTH ||
    pattern.randomLength > MAX_RANDOM_LENGTH ||
    patternLength(pattern) > MAX_CODE_LENGTH
  ) {
    return 'random_length_out_of_range';
  }
  return null;
}
