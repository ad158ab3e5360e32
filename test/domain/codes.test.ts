import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CODE_ALPHABET,
  type CodePattern,
  checkCharacter,
  checkPattern,
  displayGeneratedCode,
  generateCode,
  generateCodes,
  hasValidCheckCharacter,
  isPlausibleForPattern,
  MAX_CODE_LENGTH,
  normalizeCode,
  type RandomBytes,
} from '../../src/domain/codes.js';

const SYMBOLS = [...CODE_ALPHABET];

function pattern(overrides: Partial<CodePattern> = {}): CodePattern {
  return { prefix: 'SUM', randomLength: 12, ...overrides };
}

/** A deterministic stand-in for a CSPRNG (mulberry32), so a seed always yields the same codes. */
function seededBytes(seed: number): RandomBytes {
  let state = seed >>> 0;
  return (size) => {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = (t ^ (t >>> 14)) >>> 24;
    }
    return out;
  };
}

/** A source that returns the given bytes and records what it was asked for. */
function fixedBytes(bytes: number[]): RandomBytes & { requests: number[] } {
  const requests: number[] = [];
  const source = (size: number) => {
    requests.push(size);
    return Uint8Array.from(bytes.slice(0, size));
  };
  return Object.assign(source, { requests });
}

function replaceAt(text: string, index: number, symbol: string): string {
  return text.slice(0, index) + symbol + text.slice(index + 1);
}

function swapAt(text: string, index: number): string {
  return text.slice(0, index) + text.charAt(index + 1) + text.charAt(index) + text.slice(index + 2);
}

const bodyArb = (minLength: number, maxLength: number) =>
  fc.array(fc.constantFrom(...SYMBOLS), { minLength, maxLength }).map((symbols) => symbols.join(''));

describe('normalizeCode', () => {
  it.each([
    ['summer25', 'SUMMER25'],
    ['Summer25', 'SUMMER25'],
    ['SUMMER25', 'SUMMER25'],
    ['sum-mer 25', 'SUMMER25'],
    ['  summer25  ', 'SUMMER25'],
    ['SUM-MER-25', 'SUMMER25'],
    ['sum_mer_25', 'SUMMER25'],
    ['sum.mer.25', 'SUMMER25'],
    ['sum/mer/25', 'SUMMER25'],
    ['sum·mer·25', 'SUMMER25'],
    ['sum - _ . / mer 25', 'SUMMER25'],
    ['SUM-XXXX-YYYY-ZZZZ-C', 'SUMXXXXYYYYZZZZC'],
  ])('%j is %j', (input, expected) => {
    expect(normalizeCode(input)).toBe(expected);
  });

  it('treats `sum-mer 25` and `SUMMER25` as the same code', () => {
    expect(normalizeCode('sum-mer 25')).toBe(normalizeCode('SUMMER25'));
  });

  it('folds full-width letters, digits and separators to ASCII (NFKC)', () => {
    expect(normalizeCode('ＳＵＭＭＥＲ２５')).toBe('SUMMER25');
    expect(normalizeCode('summer２５')).toBe('SUMMER25');
    expect(normalizeCode('SUMMER－25')).toBe('SUMMER25'); // full-width hyphen
    expect(normalizeCode('SUMMER\u300025')).toBe('SUMMER25'); // ideographic space
  });

  it('accepts 64 symbols and refuses 65', () => {
    expect(normalizeCode('A'.repeat(MAX_CODE_LENGTH))).toBe('A'.repeat(MAX_CODE_LENGTH));
    expect(normalizeCode('a'.repeat(MAX_CODE_LENGTH + 1))).toBeNull();
  });

  it('counts the length after separators are removed', () => {
    const grouped = `${'ABCD-'.repeat(15)}ABCD`; // 79 characters, 64 symbols
    expect(normalizeCode(grouped)).toBe('ABCD'.repeat(16));
  });

  it.each([
    ['empty', ''],
    ['only spaces', '   '],
    ['only separators', '-_./ ·'],
    ['punctuation', 'SUMMER25!'],
    ['a percent sign', 'SUM%25'],
    ['SQL', "X'; DROP TABLE codes;--"],
    ['an accented letter', 'CAFÉ10'],
    ['an emoji', 'SUMMER🎉'],
    ['an emoji alone', '🙂'],
    ['NUL', 'SUMMER\u000025'],
    ['BEL', 'SUMMER\u000725'],
    ['ESC', 'SUMMER\u001b25'],
    ['DEL', 'SUMMER\u007f25'],
    ['a C1 control', 'SUMMER\u008525'],
    ['a zero-width space', 'SUMMER\u200b25'],
    ['a right-to-left override', 'SUMMER\u202e25'],
  ])('refuses %s', (_what, input) => {
    expect(normalizeCode(input)).toBeNull();
  });

  it('treats whitespace control characters (tab, newline) as separators, never keeping them', () => {
    // Pasted codes often carry a trailing newline; the result is still plain A-Z0-9.
    expect(normalizeCode('SUMMER25\n')).toBe('SUMMER25');
    expect(normalizeCode('SUM\tMER\r\n25')).toBe('SUMMER25');
  });

  it('refuses huge input without working through it', () => {
    expect(normalizeCode('A'.repeat(1_000_000))).toBeNull();
    expect(normalizeCode(`${' '.repeat(1_000_000)}SUMMER25`)).toBeNull();
    expect(normalizeCode('🙂'.repeat(500_000))).toBeNull();
  });

  it('property: any input gives null or 1 to 64 symbols of A-Z0-9, and normalizing again changes nothing', () => {
    // Mostly code-like text (letters, digits, separators, look-alikes), some arbitrary Unicode.
    const unit = fc.oneof(
      fc.constantFrom(...'aZ09-_ ./·'),
      fc.constantFrom('２', 'Ａ', 'ｚ', '－', '\u3000', 'ß', 'ﬁ', 'é', '\n', '\u0000', '\u200b', '🙂'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 80 }), (input) => {
        const normalized = normalizeCode(input);
        if (normalized === null) return;
        expect(normalized).toMatch(/^[A-Z0-9]{1,64}$/);
        expect(normalizeCode(normalized)).toBe(normalized);
      }),
      { numRuns: 1_000 },
    );
  });

  it('property: case and separators never change the code', () => {
    const decorated = fc
      .array(
        fc.tuple(
          fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'),
          fc.boolean(),
          fc.constantFrom('', '', '-', ' ', '_', '.', '/'),
        ),
        { minLength: 1, maxLength: 40 },
      )
      .map((parts) => ({
        canonical: parts.map(([ch]) => ch).join(''),
        typed: parts.map(([ch, lower, sep]) => (lower ? ch.toLowerCase() : ch) + sep).join(''),
      }));
    fc.assert(
      fc.property(decorated, ({ canonical, typed }) => {
        expect(normalizeCode(typed)).toBe(canonical);
      }),
    );
  });
});

describe('check symbol (Luhn mod 32)', () => {
  const bodies = [
    'A', // shortest body
    '2222222222', // all the zero-valued symbol
    'ZZZZZZZZZZZZ', // all the highest-valued symbol
    CODE_ALPHABET, // every symbol once
    ...[1, 2, 3, 4, 5].map((seed) =>
      generateCode(pattern({ prefix: '', randomLength: 12 }), seededBytes(seed)),
    ),
    generateCode(pattern({ prefix: '', randomLength: 8 }), seededBytes(42)).slice(0, -1),
    generateCode(pattern({ prefix: '', randomLength: 32 }), seededBytes(43)).slice(0, -1),
  ];

  it('appending checkCharacter(body) always validates (property)', () => {
    fc.assert(
      fc.property(bodyArb(1, 40), (body) => {
        const check = checkCharacter(body);
        expect(CODE_ALPHABET).toContain(check);
        expect(hasValidCheckCharacter(body + check)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('exactly one of the 32 possible last symbols validates, so 31 of 32 guesses fail', () => {
    fc.assert(
      fc.property(bodyArb(1, 32), (body) => {
        const valid = SYMBOLS.filter((last) => hasValidCheckCharacter(body + last));
        expect(valid).toEqual([checkCharacter(body)]);
      }),
    );
  });

  it.each(bodies)('detects EVERY single-symbol substitution in %s + check (exhaustive)', (body) => {
    const code = body + checkCharacter(body);
    let substitutions = 0;
    for (let position = 0; position < code.length; position++) {
      for (const symbol of SYMBOLS) {
        if (symbol === code[position]) continue;
        substitutions++;
        const mistyped = replaceAt(code, position, symbol);
        if (hasValidCheckCharacter(mistyped)) expect.fail(`${code} -> ${mistyped} passed the check`);
      }
    }
    expect(substitutions).toBe(code.length * 31);
  });

  it('detects every adjacent transposition except the pair 2 <-> Z (values 0 and 31), over every pair', () => {
    // Luhn mod N is blind to exactly one swap of distinct neighbours: the symbols worth 0 and N-1.
    const undetected = new Set<string>();
    let swaps = 0;
    let missed = 0;
    const trySwap = (code: string, position: number) => {
      const pair = code.slice(position, position + 2);
      if (pair[0] === pair[1]) return;
      swaps++;
      if (hasValidCheckCharacter(swapAt(code, position))) {
        missed++;
        undetected.add(pair);
      }
    };
    // Every ordered pair at every adjacent position inside a 6-symbol body (both factor parities).
    const filler = 'K7QM9T';
    for (const a of SYMBOLS) {
      for (const b of SYMBOLS) {
        for (let position = 0; position + 1 < filler.length; position++) {
          const body = filler.slice(0, position) + a + b + filler.slice(position + 2);
          trySwap(body + checkCharacter(body), position);
        }
      }
    }
    // Every ordered pair (last body symbol, check symbol): the first symbol steers the check to all 32.
    for (const last of SYMBOLS) {
      for (const first of SYMBOLS) {
        const body = `${first}K7QM${last}`;
        trySwap(body + checkCharacter(body), body.length - 1);
      }
    }
    expect([...undetected].sort()).toEqual(['2Z', 'Z2']);
    expect(swaps).toBe(32 * 31 * 6);
    expect(missed).toBe(2 * 6); // 12 of 5952 swaps of distinct neighbours pass: 99.8 % are caught
  });

  it('property: swapping two neighbours in body + check passes only when they are equal or are 2 and Z', () => {
    fc.assert(
      fc.property(
        bodyArb(1, 20).chain((body) =>
          fc.tuple(fc.constant(body + checkCharacter(body)), fc.nat({ max: body.length - 1 })),
        ),
        ([code, position]) => {
          const pair = code.slice(position, position + 2);
          const blind = pair[0] === pair[1] || pair === '2Z' || pair === 'Z2';
          expect(hasValidCheckCharacter(swapAt(code, position))).toBe(blind);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('refuses a body with a symbol outside the alphabet', () => {
    for (const body of ['SUMMER0', 'ABC1', 'HELLO', 'abc', 'AB-CD']) {
      expect(() => checkCharacter(body)).toThrow(RangeError);
    }
  });

  it('never validates text with symbols outside the alphabet, lower case, or under 2 symbols', () => {
    expect(hasValidCheckCharacter('')).toBe(false);
    expect(hasValidCheckCharacter('2')).toBe(false);
    const body = 'ABCDEFGH';
    const code = body + checkCharacter(body);
    expect(hasValidCheckCharacter(code)).toBe(true);
    expect(hasValidCheckCharacter(code.toLowerCase())).toBe(false);
    expect(hasValidCheckCharacter(`0${code.slice(1)}`)).toBe(false);
    expect(hasValidCheckCharacter(`O${code.slice(1)}`)).toBe(false);
  });
});

describe('generateCode', () => {
  it('is PREFIX + random symbols + a valid check symbol, in the alphabet and of the right length', () => {
    for (const randomLength of [8, 12, 20, 32]) {
      const p = pattern({ prefix: 'SUM', randomLength });
      for (let i = 0; i < 200; i++) {
        const code = generateCode(p, randomBytes);
        expect(code.length).toBe(3 + randomLength + 1);
        expect(code.startsWith('SUM')).toBe(true);
        const rest = code.slice(3);
        for (const symbol of rest) expect(CODE_ALPHABET).toContain(symbol);
        expect(hasValidCheckCharacter(rest)).toBe(true);
        expect(checkPattern(p)).toBeNull();
        expect(isPlausibleForPattern(code, p)).toBe(true);
        expect(normalizeCode(code)).toBe(code);
      }
    }
  });

  it('asks the random source for exactly randomLength bytes and takes each symbol from one byte', () => {
    const source = fixedBytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 31]);
    const code = generateCode(pattern({ prefix: 'SUM', randomLength: 12 }), source);
    expect(source.requests).toEqual([12]);
    expect(code).toBe(`SUM23456789ABCZ${checkCharacter('23456789ABCZ')}`);
  });

  it('uses the low 5 bits of each byte, so every byte value maps to one symbol without bias', () => {
    // 256 byte values, 8 per symbol: bytes b and b + 32k give the same symbol.
    const source = fixedBytes([0, 32, 64, 224, 31, 63, 255, 33]);
    const code = generateCode(pattern({ prefix: '', randomLength: 8 }), source);
    expect(code.slice(0, 8)).toBe('2222ZZZ3');
  });

  it('gives the same code for the same random source, and different codes for different ones', () => {
    const p = pattern();
    const fiveCodes = (source: RandomBytes) => Array.from({ length: 5 }, () => generateCode(p, source));
    const first = fiveCodes(seededBytes(7));
    const again = fiveCodes(seededBytes(7));
    expect(again).toEqual(first);
    expect(new Set(first).size).toBe(5);
    expect(generateCode(p, seededBytes(8))).not.toBe(first[0]);
  });

  it('draws its randomness only from the provided source', () => {
    const p = pattern();
    const bytes = [...randomBytes(12)];
    expect(generateCode(p, fixedBytes(bytes))).toBe(generateCode(p, fixedBytes(bytes)));
  });
});

describe('generateCodes', () => {
  it('makes the same codes as generateCode called once per code on the same random stream (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.integer({ min: 8, max: 32 }),
        fc.stringMatching(/^[A-Z0-9]{0,16}$/),
        fc.integer({ min: 1, max: 40 }),
        (seed, randomLength, prefix, count) => {
          const p = pattern({ prefix, randomLength });
          const one = seededBytes(seed);
          const singly = Array.from({ length: count }, () => generateCode(p, one));
          expect(generateCodes(p, count, seededBytes(seed))).toEqual(singly);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('draws all the randomness of a batch in one request', () => {
    const p = pattern({ prefix: 'B', randomLength: 10 });
    const source = fixedBytes([...randomBytes(10 * 1_000)]);
    const codes = generateCodes(p, 1_000, source);
    expect(source.requests).toEqual([10_000]);
    expect(codes).toHaveLength(1_000);
    for (const code of codes) expect(isPlausibleForPattern(code, p)).toBe(true);
  });
});

describe('checkPattern', () => {
  it('accepts the default pattern, an empty prefix, and the extremes of the range', () => {
    expect(checkPattern(pattern())).toBeNull();
    expect(checkPattern(pattern({ prefix: '' }))).toBeNull();
    expect(checkPattern(pattern({ randomLength: 8 }))).toBeNull();
    expect(checkPattern(pattern({ randomLength: 32 }))).toBeNull();
    expect(checkPattern(pattern({ prefix: 'P'.repeat(16), randomLength: 32 }))).toBeNull();
  });

  it('refuses fewer than 8 random symbols (less than 40 bits) and more than 32', () => {
    for (const randomLength of [-1, 0, 1, 7, 33, 100, 7.5, Number.NaN]) {
      expect(checkPattern(pattern({ randomLength }))).toBe('random_length_out_of_range');
    }
  });

  it('refuses a prefix over 16 characters or with anything but A-Z0-9', () => {
    for (const prefix of ['P'.repeat(17), 'sum', 'SUM-', 'SU M', 'SÜM', 'SUM🎉']) {
      expect(checkPattern(pattern({ prefix }))).toBe('prefix_invalid');
    }
  });
});

describe('isPlausibleForPattern', () => {
  const p = pattern({ prefix: 'SUM', randomLength: 12 });
  const code = generateCode(p, seededBytes(11));

  it('accepts a generated code of the batch', () => {
    expect(isPlausibleForPattern(code, p)).toBe(true);
  });

  it('refuses a code with the shape but a wrong check symbol', () => {
    const last = code.at(-1) as string;
    const wrong = SYMBOLS.find((symbol) => symbol !== last) as string;
    expect(isPlausibleForPattern(code.slice(0, -1) + wrong, p)).toBe(false);
  });

  it('refuses a code of another length or with another prefix', () => {
    expect(isPlausibleForPattern(code.slice(0, -1), p)).toBe(false);
    expect(isPlausibleForPattern(`${code}A`, p)).toBe(false);
    expect(isPlausibleForPattern(`WIN${code.slice(3)}`, p)).toBe(false);
    expect(isPlausibleForPattern(code, pattern({ prefix: 'SUM', randomLength: 11 }))).toBe(false);
  });

  it('checks only the part after the prefix, so a prefix may hold symbols outside the alphabet', () => {
    const withO = pattern({ prefix: 'PROMO10', randomLength: 8 });
    const generated = generateCode(withO, seededBytes(3));
    expect(isPlausibleForPattern(generated, withO)).toBe(true);
  });

  it('accepts a code typed in its displayed form once normalized', () => {
    const typed = displayGeneratedCode(code, p).toLowerCase();
    expect(isPlausibleForPattern(typed, p)).toBe(false); // not normalized yet
    expect(isPlausibleForPattern(normalizeCode(typed) as string, p)).toBe(true);
  });
});

describe('displayGeneratedCode', () => {
  it('shows the default pattern as PREFIX-XXXX-XXXX-XXXX-C', () => {
    const p = pattern({ prefix: 'SUM', randomLength: 12 });
    const code = generateCode(p, fixedBytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    expect(displayGeneratedCode(code, p)).toBe(`SUM-2345-6789-ABCD-${code.at(-1)}`);
    expect(displayGeneratedCode(generateCode(p, randomBytes), p)).toMatch(
      /^SUM-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]$/,
    );
  });

  it('shows 8 random symbols as PREFIX-XXXX-XXXX-C', () => {
    const p = pattern({ prefix: 'WIN', randomLength: 8 });
    expect(displayGeneratedCode(generateCode(p, randomBytes), p)).toMatch(/^WIN-\w{4}-\w{4}-\w$/);
  });

  it('has no leading hyphen when the prefix is empty', () => {
    const p = pattern({ prefix: '', randomLength: 12 });
    expect(displayGeneratedCode(generateCode(p, randomBytes), p)).toMatch(/^\w{4}-\w{4}-\w{4}-\w$/);
  });

  it('property: the displayed form normalizes back to the code, for every valid pattern', () => {
    const patternArb = fc.record({
      prefix: fc
        .array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'), { maxLength: 16 })
        .map((s) => s.join('')),
      randomLength: fc.integer({ min: 8, max: 32 }),
    });
    fc.assert(
      fc.property(patternArb, fc.integer(), (p, seed) => {
        const code = generateCode(p, seededBytes(seed));
        const shown = displayGeneratedCode(code, p);
        expect(normalizeCode(shown)).toBe(code);
        expect(isPlausibleForPattern(normalizeCode(shown) as string, p)).toBe(true);
      }),
    );
  });
});
