import { describe, expect, it } from 'vitest';
import { isId, newId, ulid } from '../../src/lib/ids.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const decode = (symbols: string): bigint =>
  [...symbols].reduce((n, c) => n * 32n + BigInt(CROCKFORD.indexOf(c)), 0n);

describe('ids', () => {
  it('encode the millisecond in the first ten symbols and carry their kind', () => {
    const id = newId('redemption', 1_700_000_000_123);
    expect(isId('redemption', id)).toBe(true);
    expect(isId('event', id)).toBe(false);
    expect(decode(id.slice(4, 14))).toBe(1_700_000_000_123n);
  });

  it('are distinct across many draws (well past one 4 KiB pool of randomness)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) seen.add(ulid(1_700_000_000_000 + i * 2));
    expect(seen.size).toBe(5_000);
    // The random parts differ too, not only the times: no pool slice is handed out twice.
    expect(new Set([...seen].map((id) => id.slice(10))).size).toBe(5_000);
  });

  it('increase within one millisecond, so newest-first lists stay exact', () => {
    const ms = 1_700_000_100_000;
    const ids = Array.from({ length: 1_000 }, () => ulid(ms));
    for (let i = 1; i < ids.length; i++) {
      expect(decode((ids[i] as string).slice(10))).toBe(decode((ids[i - 1] as string).slice(10)) + 1n);
    }
    expect([...ids].sort()).toEqual(ids);
  });

  it('use every symbol of the alphabet in the random part', () => {
    const symbols = new Set<string>();
    for (let i = 0; i < 500; i++) for (const c of ulid(1_700_000_200_000 + i * 2).slice(10)) symbols.add(c);
    expect(symbols.size).toBe(32);
  });
});
