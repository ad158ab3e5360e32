/**
 * Ids carry the kind of thing they name (`cmp_`, `red_`, …) followed by a ULID: 48 bits of
 * milliseconds then 80 random bits, in Crockford base32, so ids sort by creation time and list
 * pages can use the id as their cursor.
 */
import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export const ID_PREFIXES = {
  apiKey: 'key',
  campaign: 'cmp',
  batch: 'bat',
  code: 'code',
  redemption: 'red',
  event: 'evt',
  program: 'prg',
  conversion: 'cnv',
  request: 'req',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

export function ulid(nowMs: number = Date.now()): string {
  let time = '';
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[(bytes[i] as number) & 31];
  return time + rand;
}

export function newId(kind: IdKind, nowMs?: number): string {
  return `${ID_PREFIXES[kind]}_${ulid(nowMs)}`;
}

export function isId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9A-HJKMNP-TV-Z]{26}$`).test(value);
}
