/**
 * A copy of a data set held in memory by each node, re-read when its change stamp moves: at once on
 * the node that made a change (`invalidate`), within `checkMs` on the others (a one-row read, in the
 * background: the request that notices uses the copy it has, the next ones get the new one).
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { readStamp, type StampName } from './stamps.js';

export class StampedCache<T> {
  private copy: { stamp: number; value: T } | null = null;
  private loading: Promise<T> | null = null;
  private checkedAt = 0;
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

  private async reload(): Promise<T> {
    const generation = this.generation;
    // The stamp first: a change committed between the two reads is seen again at the next check.
    const stamp = await readStamp(this.db, this.name);
    const value = await this.load();
    if (generation === this.generation) {
      this.copy = { stamp, value };
      this.checkedAt = Date.now();
    }
    return value;
  }

  async get(): Promise<T> {
    const copy = this.copy;
    if (copy === null) {
      this.loading ??= this.reload().finally(() => {
        this.loading = null;
      });
      return this.loading;
    }
    if (Date.now() - this.checkedAt > this.checkMs && this.loading === null) {
      this.checkedAt = Date.now();
      this.loading = readStamp(this.db, this.name)
        .then((stamp) => (stamp !== copy.stamp ? this.reload() : copy.value))
        .catch((err: unknown) => {
          this.onError(err);
          return copy.value;
        })
        .finally(() => {
          this.loading = null;
        });
    }
    return copy.value;
  }
}
