/**
 * Ids carry the kind of thing they name (`cmp_`, `red_`, …) followed by a ULID: 48 bits of
 * milliseconds then 80 random bits, in Crockford base32, so ids sort by creation time and list
 * pages can use the id as their cursor.
 */
import { randomFillSync } from 'node:crypto';

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
  approval: 'apr',
  reconciliation: 'rcn',
  webhook: 'whk',
  webhookDelivery: 'whd',
  consoleUser: 'usr',
  remediationPolicy: 'rpol',
  remediation: 'rem',
  alert: 'alt',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/** Random bytes are drawn 4 KiB at a time: one call into the CSPRNG per 256 ids instead of one per id. */
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;

let lastTime = -1;
/** The time part of the last id: ids made in one millisecond (a generated batch) share it. */
let lastTimeText = '';
/** The random part of the last id, one base32 symbol (0–31) per element. */
const lastRandom = new Uint8Array(16);

/**
 * Monotonic within this process: ids made in the same millisecond (concurrent conversions, a frozen
 * test clock) increment the random part instead of drawing a new one, so "newest first" stays exact.
 */
export function ulid(nowMs: number = Date.now()): string {
  if (nowMs === lastTime) {
    let i = 15;
    while (i >= 0 && lastRandom[i] === 31) lastRandom[i--] = 0;
    if (i >= 0) lastRandom[i] = (lastRandom[i] as number) + 1;
  } else {
    if (poolOffset + 16 > pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    for (let i = 0; i < 16; i++) lastRandom[i] = (pool[poolOffset + i] as number) & 31;
    poolOffset += 16;
  }
  if (nowMs !== lastTime || lastTimeText === '') lastTimeText = timePart(nowMs);
  lastTime = nowMs;
  const time = lastTimeText;
  let random = '';
  for (let i = 0; i < 16; i++) random += CROCKFORD[lastRandom[i] as number];
  return time + random;
}

export function newId(kind: IdKind, nowMs?: number): string {
  return `${ID_PREFIXES[kind]}_${ulid(nowMs)}`;
}

export function isId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9A-HJKMNP-TV-Z]{26}$`).test(value);
}

/** The smallest id of `kind` made at `ms` or later: ids sort by time, so a time range is an id range. */
export function idFloor(kind: IdKind, ms: number): string {
  return `${ID_PREFIXES[kind]}_${timePart(Math.max(0, Math.floor(ms)))}${'0'.repeat(16)}`;
}

/** A ULID's first ten symbols: the milliseconds, base 32, most significant first. */
function timePart(ms: number): string {
  let time = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}
