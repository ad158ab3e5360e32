/**
 * A copy of a data set held in memory by each node, re-read when its change stamp moves: at once on
 * the node that made a change (`invalidate`); on the others no request is answered from a copy whose
 * stamp was read more than `checkMs` before the request began. Past half of that the copy is checked in
 * the background (a one-row read) while requests go on with it; past all of it a request waits for the
 * check. So a change committed at T is in force on every node for every request begun after T + checkMs.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { readStamp, type StampName } from './stamps.js';

interface Copy<T> {
  stamp: number;
  value: T;
  /** When the stamp read that this copy is known to be current for began. */
  readAt: number;
}

export class StampedCache<T> {
  private copy: Copy<T> | null = null;
  private loading: { startedAt: number; value: Promise<T> } | null = null;
  /** Bumped by every invalidation: a load begun before it must not install its older copy. */
  private generation = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly name: StampName,
    private readonly load: () => Promise<T>,
    private readonly checkMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  invalidate(): void {
    this.generation++;
    this.copy = null;
    this.loading = null;
  }

  /** Read the stamp; re-load when it moved (or when there is no copy), and install what was read. */
  private async check(copy: Copy<T> | null, startedAt: number): Promise<T> {
    const generation = this.generation;
    // The stamp first: a change committed between the two reads is seen again at the next check.
    const stamp = await readStamp(this.db, this.name);
    if (copy !== null && stamp === copy.stamp) {
      if (generation === this.generation && this.copy === copy)
        copy.readAt = Math.max(copy.readAt, startedAt);
      return copy.value;
    }
    const value = await this.load();
    if (generation === this.generation) this.copy = { stamp, value, readAt: startedAt };
    return value;
  }

  /** The check under way if it began recently enough for a request begun at `now`, else a new one. */
  private checking(copy: Copy<T> | null, now: number): Promise<T> {
    if (this.loading && this.loading.startedAt >= now - this.checkMs) return this.loading.value;
    const loading = {
      startedAt: now,
      value: this.check(copy, now).finally(() => {
        if (this.loading === loading) this.loading = null;
      }),
    };
    this.loading = loading;
    return loading.value;
  }

  async get(): Promise<T> {
    const now = Date.now();
    const copy = this.copy;
    if (copy === null) return this.checking(null, now);
    const age = now - copy.readAt;
    if (age > this.checkMs) {
      // Past the bound (a quiet node): this request waits for the one-row check rather than judge with
      // a copy that may miss a change another node committed more than checkMs ago.
      return this.checking(copy, now).catch((err: unknown) => {
        this.onError(err);
        return copy.value;
      });
    }
    if (age > this.checkMs / 2 && this.loading === null) {
      // Ahead of the bound, in the background: under steady traffic no request waits for a check.
      this.checking(copy, now).catch((err: unknown) => this.onError(err));
    }
    return copy.value;
  }
}
