/**
 * Many Poisson CUSUMs, one per key (a campaign, a partner, a code, an address block), in a bounded map.
 *
 * Time is the caller's clock in ms; every key shares the epoch-aligned intervals, and the container's
 * current interval is the latest one it has been told about. Cost per event is O(1) amortized: an event
 * only touches its key, and `advance` closes the current interval only for the keys that saw an event
 * in it. A key with no event in an interval cannot alarm on it (S only falls), so its empty intervals
 * are applied lazily, in closed form, when the key is next touched.
 *
 * Memory is bounded twice: at most `maxKeys` keys (the least recently touched key is evicted to make
 * room), and a key untouched for `idleIntervals` is dropped on the next `advance`. A dropped key that
 * returns starts a new warm-up. Keys are kept in a Map in order of their last touched interval, so both
 * bounds take O(1) per dropped key.
 *
 * State snapshots are plain JSON, so a node can persist them and a restarted node carries on exactly
 * where the snapshot left off.
 */

import {
  baselineRate,
  type CusumAlarm,
  closeEmptyIntervals,
  closeInterval,
  copyPoissonCusumState,
  newPoissonCusumState,
  type PlannedPeak,
  type PoissonCusumConfig,
  type PoissonCusumState,
  poissonCusumConfig,
  setPlannedPeaks,
} from './poisson-cusum.js';

export interface KeyedAlarm extends CusumAlarm {
  key: string;
}

export interface KeyedOptions {
  detector: PoissonCusumConfig;
  /** Most keys held at once; the least recently touched key is evicted beyond it. */
  maxKeys: number;
  /** A key with no event (and no setPeaks) for more than this many intervals is dropped. */
  idleIntervals: number;
}

export interface KeyedOptionsInput {
  detector?: Partial<PoissonCusumConfig>;
  maxKeys?: number;
  idleIntervals?: number;
}

export const DEFAULT_MAX_KEYS = 100_000;
/** A day of one-minute intervals. */
export const DEFAULT_IDLE_INTERVALS = 1_440;

export function keyedOptions(input: KeyedOptionsInput = {}): KeyedOptions {
  const maxKeys = input.maxKeys ?? DEFAULT_MAX_KEYS;
  const idleIntervals = input.idleIntervals ?? DEFAULT_IDLE_INTERVALS;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError(`invalid maxKeys: ${maxKeys}`);
  if (!Number.isSafeInteger(idleIntervals) || idleIntervals < 1) {
    throw new RangeError(`invalid idleIntervals: ${idleIntervals}`);
  }
  return { detector: poissonCusumConfig(input.detector), maxKeys, idleIntervals };
}

export interface KeyedStats {
  /** Keys evicted by the maxKeys bound (each one lost its history). */
  evicted: number;
  /** Keys dropped after idleIntervals without an event. */
  idleDropped: number;
  /** Events stamped in an interval already closed; they are counted in the current one. */
  lateEvents: number;
}

export interface KeyInspection {
  /** λ0 outside peaks, events per interval; null while the key warms up. */
  baseline: number | null;
  statistic: number;
  /** Start (ms) of the open alarm episode's rise, or null when no episode is open. */
  episodeSince: number | null;
  /** What the current, still open interval holds so far. */
  openValue: number;
  peaks: PlannedPeak[];
}

export interface KeyedEntrySnapshot<Open> {
  key: string;
  /** Last interval in which the key was touched. */
  touched: number;
  state: PoissonCusumState;
  /** The open interval's accumulator, when touched is the current interval. */
  open: Open | null;
}

export interface KeyedSnapshot<Open, Extra> {
  version: 1;
  kind: string;
  options: KeyedOptions & Extra;
  /** The open interval, or null before the first event or advance. */
  current: number | null;
  /** Least recently touched first. */
  entries: KeyedEntrySnapshot<Open>[];
  /** Alarms raised while an event moved the clock, not yet returned by advance. */
  pending: KeyedAlarm[];
  stats: KeyedStats;
}

/** How an interval's events fold into the number the CUSUM sees (a count, a distinct count). */
export interface IntervalAccumulator<Acc, Item, Open> {
  empty(): Acc;
  add(acc: Acc, item: Item): Acc;
  value(acc: Acc): number;
  save(acc: Acc): Open;
  load(open: Open): Acc;
}

interface Entry<Acc> {
  state: PoissonCusumState;
  acc: Acc;
  touched: number;
}

function byIntervalThenKey(a: KeyedAlarm, b: KeyedAlarm): number {
  if (a.intervalStart !== b.intervalStart) return a.intervalStart - b.intervalStart;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The keyed container, generic in what an interval accumulates; see KeyedDetectors. */
export class KeyedStreams<Acc, Item, Open, Extra extends object = Record<never, never>> {
  readonly options: KeyedOptions & Extra;
  private readonly config: PoissonCusumConfig;
  private readonly entries = new Map<string, Entry<Acc>>();
  /** Keys touched in the current interval (may hold a key twice, or an evicted one: checked on close). */
  private dirty: string[] = [];
  private current: number | null = null;
  private pending: KeyedAlarm[] = [];
  private readonly counters: KeyedStats = { evicted: 0, idleDropped: 0, lateEvents: 0 };

  protected constructor(
    options: KeyedOptions & Extra,
    private readonly kind: string,
    private readonly accumulator: IntervalAccumulator<Acc, Item, Open>,
  ) {
    this.options = options;
    this.config = options.detector;
  }

  /** Number of keys held. */
  get size(): number {
    return this.entries.size;
  }

  get stats(): KeyedStats {
    return { ...this.counters };
  }

  private intervalOf(timeMs: number): number {
    if (!Number.isFinite(timeMs)) throw new RangeError(`invalid time: ${timeMs}`);
    return Math.floor(timeMs / this.config.intervalMs);
  }

  /**
   * Moves the clock to `timeMs` and returns the alarms raised by intervals that closed (every interval
   * before the one holding timeMs), with those raised earlier when an event moved the clock, ordered
   * by interval then key. An earlier time than the clock closes nothing.
   */
  advance(timeMs: number): KeyedAlarm[] {
    const target = this.intervalOf(timeMs);
    if (this.current === null) this.current = target;
    else if (target > this.current) this.closeThrough(target);
    const out = this.pending;
    this.pending = [];
    return out.sort(byIntervalThenKey);
  }

  /**
   * Records one item for `key` at `timeMs`. An item stamped after the current interval moves the clock
   * there first (alarms wait for the next advance); one stamped in an interval already closed counts
   * in the current interval, so no evidence is lost (and `stats.lateEvents` says how often).
   */
  protected record(key: string, timeMs: number, item: Item): void {
    const interval = this.intervalOf(timeMs);
    if (this.current === null) this.current = interval;
    else if (interval > this.current) this.closeThrough(interval);
    else if (interval < this.current) this.counters.lateEvents += 1;
    const entry = this.touch(key);
    entry.acc = this.accumulator.add(entry.acc, item);
  }

  /**
   * Declares the planned peaks of `key` (replacing earlier ones), creating the key if needed. Needs a
   * clock: pass timeMs when nothing has been observed or advanced yet.
   */
  setPeaks(key: string, peaks: readonly PlannedPeak[], timeMs?: number): void {
    if (this.current === null) {
      if (timeMs === undefined) throw new RangeError('setPeaks before the first event needs a time');
      this.current = this.intervalOf(timeMs);
    } else if (timeMs !== undefined && this.intervalOf(timeMs) > this.current) {
      // Move the clock first, as record() does: a key created at a stale interval would take the quiet
      // time since as learned empty intervals, end its warm-up at a baseline of nothing, and alarm.
      this.closeThrough(this.intervalOf(timeMs));
    }
    const entry = this.touch(key);
    setPlannedPeaks(this.config, entry.state, peaks);
  }

  /** The key's current baseline and statistic, without changing anything; null for an unknown key. */
  inspect(key: string): KeyInspection | null {
    const entry = this.entries.get(key);
    if (entry === undefined || this.current === null) return null;
    const state = copyPoissonCusumState(entry.state);
    closeEmptyIntervals(this.config, state, this.current);
    return {
      baseline: baselineRate(this.config, state),
      statistic: state.s,
      episodeSince: state.episode === null ? null : state.episode.start * this.config.intervalMs,
      openValue: entry.touched === this.current ? this.accumulator.value(entry.acc) : 0,
      peaks: state.peaks,
    };
  }

  /**
   * The alarm the key's open interval will raise when it closes, judged on what it holds so far, or
   * null. S only grows with the interval's count, so an alarm found here is certain at the close, with
   * the same `since` (the episode's identity): a caller that checks after each event reports within
   * the interval instead of at its end. Changes nothing.
   */
  check(key: string): KeyedAlarm | null {
    const entry = this.entries.get(key);
    if (entry === undefined || this.current === null || entry.touched !== this.current) return null;
    const state = copyPoissonCusumState(entry.state);
    closeEmptyIntervals(this.config, state, this.current);
    const alarm = closeInterval(this.config, state, this.accumulator.value(entry.acc));
    return alarm === null ? null : { key, ...alarm };
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Keys, least recently touched first. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  private touch(key: string): Entry<Acc> {
    const current = this.current as number;
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { state: newPoissonCusumState(current), acc: this.accumulator.empty(), touched: current };
      this.entries.set(key, entry);
      this.dirty.push(key);
      if (this.entries.size > this.options.maxKeys) this.evictOldest();
    } else if (entry.touched !== current) {
      closeEmptyIntervals(this.config, entry.state, current);
      entry.touched = current;
      entry.acc = this.accumulator.empty();
      // Re-inserting keeps the Map ordered by last touched interval, oldest first.
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.dirty.push(key);
    }
    return entry;
  }

  private evictOldest(): void {
    for (const key of this.entries.keys()) {
      this.entries.delete(key);
      this.counters.evicted += 1;
      return;
    }
  }

  private closeThrough(target: number): void {
    const current = this.current as number;
    for (const key of this.dirty) {
      const entry = this.entries.get(key);
      // Skip a key evicted since its touch, or listed twice (evicted and re-created).
      if (entry === undefined || entry.touched !== current || entry.state.next !== current) continue;
      const alarm = closeInterval(this.config, entry.state, this.accumulator.value(entry.acc));
      entry.acc = this.accumulator.empty();
      if (alarm !== null) this.pending.push({ key, ...alarm });
    }
    this.dirty = [];
    this.current = target;
    for (const [key, entry] of this.entries) {
      if (target - entry.touched <= this.options.idleIntervals) break;
      this.entries.delete(key);
      this.counters.idleDropped += 1;
    }
  }

  /** Plain JSON; nothing in it aliases this container's state. */
  snapshot(): KeyedSnapshot<Open, Extra> {
    const entries: KeyedEntrySnapshot<Open>[] = [];
    for (const [key, entry] of this.entries) {
      entries.push({
        key,
        touched: entry.touched,
        state: copyPoissonCusumState(entry.state),
        open: entry.touched === this.current ? this.accumulator.save(entry.acc) : null,
      });
    }
    return {
      version: 1,
      kind: this.kind,
      options: structuredCopy(this.options),
      current: this.current,
      entries,
      pending: this.pending.map((a) => ({ ...a })),
      stats: { ...this.counters },
    };
  }

  /** Loads a snapshot into this (new, empty) container. */
  protected load(snapshot: KeyedSnapshot<Open, Extra>): void {
    if (snapshot.version !== 1 || snapshot.kind !== this.kind) {
      throw new RangeError(`not a ${this.kind} snapshot of version 1`);
    }
    this.current = snapshot.current;
    for (const e of snapshot.entries) {
      const acc = e.open === null ? this.accumulator.empty() : this.accumulator.load(e.open);
      this.entries.set(e.key, { state: copyPoissonCusumState(e.state), acc, touched: e.touched });
      if (e.touched === this.current) this.dirty.push(e.key);
    }
    this.pending = snapshot.pending.map((a) => ({ ...a }));
    Object.assign(this.counters, snapshot.stats);
  }
}

/** A deep copy of plain data (options hold only numbers and nested objects of numbers). */
function structuredCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

const COUNT: IntervalAccumulator<number, number, number> = {
  empty: () => 0,
  add: (acc, n) => acc + n,
  value: (acc) => acc,
  save: (acc) => acc,
  load: (open) => open,
};

export type KeyedDetectorsSnapshot = KeyedSnapshot<number, Record<never, never>>;

/**
 * Event counts per key per interval, each key watched by its own Poisson CUSUM.
 *
 *   const detectors = new KeyedDetectors({ detector: { intervalMs: 60_000 } });
 *   detectors.observe(`campaign:${id}`, now);      // per redemption
 *   for (const alarm of detectors.advance(now)) …  // e.g. every few seconds
 */
export class KeyedDetectors extends KeyedStreams<number, number, number> {
  constructor(options: KeyedOptionsInput = {}) {
    super(keyedOptions(options), 'count', COUNT);
  }

  /** Counts `n` events (a non-negative integer) for `key` at `timeMs`. */
  observe(key: string, timeMs: number, n = 1): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid event count: ${n}`);
    this.record(key, timeMs, n);
  }

  static restore(snapshot: KeyedDetectorsSnapshot): KeyedDetectors {
    const detectors = new KeyedDetectors(snapshot.options);
    detectors.load(snapshot);
    return detectors;
  }
}
