/**
 * Distinct counts per key per interval (distinct payment instruments, devices or new accounts per code
 * or campaign), fed to the same Poisson CUSUM as plain counts: a ring that redeems one code with many
 * cards shows as a rise in distinct cards per minute even when the redemption count looks ordinary.
 *
 * Bounded memory per key and interval. A sketch is exact up to `exactCap` distinct values (a Set of
 * 32-bit hashes), then turns into a HyperLogLog (Flajolet et al. 2007) of 2^precision one-byte
 * registers, with linear counting in its small range (Whang et al. 1990; Heule et al. 2013).
 * Why not saturate at the cap: a busy campaign's normal distinct count can exceed any cap chosen for a
 * quiet code, and a saturated count cannot rise, so the detector would go blind exactly where the
 * volume is. Why not HLL throughout: the typical key sees a handful of values per interval, which an
 * exact set holds in a few hundred bytes. With the defaults (64, precision 10: 1 KiB) the estimate's
 * relative error is about 1.04/√1024 ≈ 3 % beyond 64, well below the Poisson noise the CUSUM already
 * allows for at those counts (1/√64 ≈ 12 %). The final estimate depends only on the set of values,
 * not on their order.
 *
 * Values are hashed to 32 bits. Feed the keyed hashes (HMACs) the service already stores for
 * identifiers, not raw values an attacker chooses: with a public hash, colliding values are easy to
 * make, and colliding cards would count as one.
 */

import {
  type KeyedOptions,
  type KeyedOptionsInput,
  type KeyedSnapshot,
  KeyedStreams,
  keyedOptions,
} from './keyed-detectors.js';

export interface DistinctOptions {
  /** Distinct values held exactly before switching to HyperLogLog. */
  exactCap: number;
  /** HyperLogLog precision p: 2^p registers of one byte, relative error about 1.04 / 2^(p/2). */
  precision: number;
}

export const DEFAULT_DISTINCT: Readonly<DistinctOptions> = Object.freeze({ exactCap: 64, precision: 10 });

export function distinctOptions(input: Partial<DistinctOptions> = {}): DistinctOptions {
  const o = { ...DEFAULT_DISTINCT, ...input };
  if (!Number.isSafeInteger(o.exactCap) || o.exactCap < 0)
    throw new RangeError(`invalid exactCap: ${o.exactCap}`);
  if (!Number.isInteger(o.precision) || o.precision < 4 || o.precision > 16) {
    throw new RangeError(`invalid precision: ${o.precision}`);
  }
  return o;
}

/**
 * A 32-bit hash of a string (MurmurHash3's mixing over UTF-16 code units, then its finalizer): well
 * spread, so the leading bits pick a register and the rest give a geometric rank.
 */
export function hashValue(value: string): number {
  let h = 0x9747b28c;
  for (let i = 0; i < value.length; i++) {
    let k = Math.imul(value.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= value.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** JSON form: the exact hashes in ascending order, or the registers as one base-32 digit each. */
export type DistinctSketchJson = { hashes: number[] } | { registers: string };

export class DistinctSketch {
  private exact: Set<number> | null = new Set();
  private registers: Uint8Array | null = null;

  constructor(private readonly options: DistinctOptions) {}

  get isExact(): boolean {
    return this.exact !== null;
  }

  /** Adds a 32-bit hash (see hashValue). */
  add(hash: number): void {
    if (this.exact !== null) {
      this.exact.add(hash >>> 0);
      if (this.exact.size <= this.options.exactCap) return;
      const hashes = this.exact;
      this.exact = null;
      this.registers = new Uint8Array(1 << this.options.precision);
      for (const h of hashes) this.addToRegisters(h);
      return;
    }
    this.addToRegisters(hash >>> 0);
  }

  private addToRegisters(hash: number): void {
    const p = this.options.precision;
    const registers = this.registers as Uint8Array;
    const index = hash >>> (32 - p);
    // Rank: position of the first 1 bit in the remaining 32 − p bits (32 − p + 1 when they are all 0).
    const rest = (hash << p) >>> 0;
    const rank = rest === 0 ? 32 - p + 1 : Math.clz32(rest) + 1;
    if (rank > (registers[index] as number)) registers[index] = rank;
  }

  /** The number of distinct values added: exact up to exactCap, then HyperLogLog's estimate. */
  estimate(): number {
    if (this.exact !== null) return this.exact.size;
    const registers = this.registers as Uint8Array;
    const m = registers.length;
    let sum = 0;
    let zeros = 0;
    for (const r of registers) {
      sum += 2 ** -r;
      if (r === 0) zeros += 1;
    }
    const raw = ((0.7213 / (1 + 1.079 / m)) * m * m) / sum;
    // Linear counting is the better estimator while registers are still empty (small range).
    if (raw <= 2.5 * m && zeros > 0) return m * Math.log(m / zeros);
    return raw;
  }

  toJSON(): DistinctSketchJson {
    if (this.exact !== null) return { hashes: [...this.exact].sort((a, b) => a - b) };
    let text = '';
    for (const r of this.registers as Uint8Array) text += r.toString(32);
    return { registers: text };
  }

  static fromJSON(json: DistinctSketchJson, options: DistinctOptions): DistinctSketch {
    const sketch = new DistinctSketch(options);
    if ('hashes' in json) {
      for (const h of json.hashes) sketch.add(h);
      return sketch;
    }
    if (json.registers.length !== 1 << options.precision)
      throw new RangeError('register count does not match');
    sketch.exact = null;
    sketch.registers = Uint8Array.from(json.registers, (c) => Number.parseInt(c, 32));
    return sketch;
  }
}

export interface KeyedDistinctOptionsInput extends KeyedOptionsInput {
  distinct?: Partial<DistinctOptions>;
}

type DistinctExtra = { distinct: DistinctOptions };
export type KeyedDistinctSnapshot = KeyedSnapshot<DistinctSketchJson, DistinctExtra>;

/**
 * Distinct values per key per interval, each key watched by its own Poisson CUSUM; the count the CUSUM
 * sees for an interval is the sketch's estimate, rounded.
 *
 *   const cards = new KeyedDistinctDetectors();
 *   cards.observe(`code:${code}`, now, paymentFingerprintHmac);
 */
export class KeyedDistinctDetectors extends KeyedStreams<
  DistinctSketch | null,
  string,
  DistinctSketchJson,
  DistinctExtra
> {
  constructor(options: KeyedDistinctOptionsInput = {}) {
    const distinct = distinctOptions(options.distinct);
    const resolved: KeyedOptions & DistinctExtra = { ...keyedOptions(options), distinct };
    super(resolved, 'distinct', {
      // An untouched key holds no sketch, so idle keys cost nothing here.
      empty: () => null,
      add: (acc, value) => {
        const sketch = acc ?? new DistinctSketch(distinct);
        sketch.add(hashValue(value));
        return sketch;
      },
      value: (acc) => (acc === null ? 0 : Math.round(acc.estimate())),
      save: (acc) => (acc === null ? { hashes: [] } : acc.toJSON()),
      load: (open) =>
        'hashes' in open && open.hashes.length === 0 ? null : DistinctSketch.fromJSON(open, distinct),
    });
  }

  /** Records that `value` (a keyed hash of an instrument, device, account) was seen for `key`. */
  observe(key: string, timeMs: number, value: string): void {
    this.record(key, timeMs, value);
  }

  static restore(snapshot: KeyedDistinctSnapshot): KeyedDistinctDetectors {
    const detectors = new KeyedDistinctDetectors(snapshot.options);
    detectors.load(snapshot);
    return detectors;
  }
}
