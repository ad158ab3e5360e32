/**
 * Block and allow lists over any identifier type. Entries hold the keyed hash of the normalized value
 * (customer ids, which are your own ids, as they are), a reason, who added it and an optional expiry.
 * A blocked identifier's validation and redemption are refused; an allowed one skips the velocity
 * defenses (rate limits, lockouts) but never a cap.
 *
 * Judging happens on every validation and redemption, so each node keeps the active entries in memory
 * (up to CACHE_MAX_ENTRIES; beyond that it asks the database each time) and re-reads them when the
 * lists' change stamp moves: at once on the node that made the change, within STAMP_CHECK_MS on the
 * others.
 */
import { IDENTIFIER_TYPES, type IdentifierType } from '../domain/identity/index.js';
import { AppError } from '../errors.js';
import type { IdentifierHasher } from '../security/identifier-hasher.js';
import type { HashedIdentifier } from '../security/request-context.js';
import { insertAudit } from '../store/audit.js';
import {
  activeEntries,
  type ListEntry,
  type ListName,
  listEntries,
  matchingEntries,
  removeEntry,
  upsertEntry,
} from '../store/lists.js';
import { StampedCache } from '../store/stamped-cache.js';
import { bumpStamp } from '../store/stamps.js';
import type { Actor, ServiceContext } from './context.js';

export const LIST_TYPES = ['customer', ...IDENTIFIER_TYPES] as const;
export type ListType = (typeof LIST_TYPES)[number];

export interface ListVerdict {
  blocked: ListEntry | null;
  allowed: boolean;
}

const CACHE_MAX_ENTRIES = 100_000;
const STAMP_CHECK_MS = 1_000;

/** `type:hash` → its active entries; null when there are too many entries to keep. */
type Snapshot = Map<string, ListEntry[]> | null;

export class ListService {
  private readonly snapshot: StampedCache<Snapshot>;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly hasher: IdentifierHasher,
    onError: (err: unknown) => void = () => {},
  ) {
    this.snapshot = new StampedCache(ctx.db, 'lists', () => this.load(), STAMP_CHECK_MS, onError);
  }

  private async load(): Promise<Snapshot> {
    const entries = await activeEntries(this.ctx.db, CACHE_MAX_ENTRIES + 1);
    if (entries.length > CACHE_MAX_ENTRIES) return null;
    const byKey = new Map<string, ListEntry[]>();
    for (const e of entries) {
      const key = `${e.identifierType}:${e.identifierHash}`;
      const list = byKey.get(key);
      if (list) list.push(e);
      else byKey.set(key, [e]);
    }
    return byKey;
  }

  private hashOf(type: ListType, value: string): string {
    if (type === 'customer') return value;
    const hash = this.hasher.fromRaw(type as IdentifierType, value);
    if (hash === null) {
      throw new AppError('validation_failed', `value is not a valid ${type}`, {
        errors: [{ field: 'body/value', message: `is not a valid ${type}` }],
      });
    }
    return hash;
  }

  async add(
    entry: { list: ListName; type: ListType; value: string; reason: string; expiresAt: Date | null },
    actor: Actor,
  ): Promise<ListEntry> {
    const now = this.ctx.clock.now();
    if (entry.expiresAt !== null && entry.expiresAt.getTime() <= now.getTime()) {
      throw new AppError('validation_failed', 'expires_at must be in the future');
    }
    const hash = this.hashOf(entry.type, entry.value);
    const added = await this.ctx.db.transaction().execute(async (trx) => {
      const saved = await upsertEntry(
        trx,
        {
          list: entry.list,
          type: entry.type,
          hash,
          reason: entry.reason,
          createdBy: actor,
          expiresAt: entry.expiresAt,
        },
        now,
      );
      await insertAudit(
        trx,
        {
          actor,
          action: `list.${entry.list}.add`,
          targetId: String(saved.id),
          reason: entry.reason,
          details: { type: entry.type, identifier_hash: hash, expires_at: entry.expiresAt },
        },
        now,
      );
      await bumpStamp(trx, 'lists');
      return saved;
    });
    this.snapshot.invalidate();
    return added;
  }

  async remove(id: number, actor: Actor, reason: string | null): Promise<ListEntry> {
    const now = this.ctx.clock.now();
    const removed = await this.ctx.db.transaction().execute(async (trx) => {
      const r = await removeEntry(trx, id, actor, now);
      if (r) {
        await insertAudit(
          trx,
          {
            actor,
            action: `list.${r.list}.remove`,
            targetId: String(id),
            reason,
            details: { type: r.identifierType, identifier_hash: r.identifierHash },
          },
          now,
        );
        await bumpStamp(trx, 'lists');
      }
      return r;
    });
    this.snapshot.invalidate();
    if (!removed) throw new AppError('list_entry_not_found');
    return removed;
  }

  list(filter: {
    list?: ListName | undefined;
    type?: string | undefined;
    limit: number;
    before?: number | undefined;
  }) {
    return listEntries(this.ctx.db, filter);
  }

  /** How the lists judge a request: blocked if any identifier is blocked (block wins over allow). */
  async judge(customerId: string, identifiers: HashedIdentifier[]): Promise<ListVerdict> {
    const now = this.ctx.clock.now();
    const wanted = [{ type: 'customer', hash: customerId }, ...identifiers];
    const byKey = await this.snapshot.get();
    let entries: ListEntry[];
    if (byKey === null) {
      entries = await matchingEntries(this.ctx.db, wanted, now);
    } else {
      entries = wanted
        .flatMap((w) => byKey.get(`${w.type}:${w.hash}`) ?? [])
        .filter((e) => e.expiresAt === null || e.expiresAt.getTime() > now.getTime());
    }
    return {
      blocked: entries.find((e) => e.list === 'block') ?? null,
      allowed: entries.some((e) => e.list === 'allow'),
    };
  }
}
