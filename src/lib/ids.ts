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
  person: 'per',
  request: 'req',
  rule: 'rule',
  decision: 'dec',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

let lastTime = -1;
let lastRandom: number[] = [];

/**
 * Monotonic within this process: ids made in the same millisecond (concurrent conversions, a frozen
 * test clock) increment the random part instead of drawing a new one, so "newest first" stays exact.
 */
export function ulid(nowMs: number = Date.now()): string {
  let random: number[];
  if (nowMs === lastTime && lastRandom.length === 16) {
    random = [...lastRandom];
    let i = 15;
    while (i >= 0 && random[i] === 31) random[i--] = 0;
    if (i >= 0) random[i] = (random[i] as number) + 1;
  } else {
    random = [...randomBytes(16)].map((b) => b & 31);
  }
  lastTime = nowMs;
  lastRandom = random;
  let time = '';
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + random.map((v) => CROCKFORD[v]).join('');
}

export function newId(kind: IdKind, nowMs?: number): string {
  return `${ID_PREFIXES[kind]}_${ulid(nowMs)}`;
}

export function isId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9A-HJKMNP-TV-Z]{26}$`).test(value);
}
