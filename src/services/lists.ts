/**
 * Block and allow lists over any identifier type. Entries hold the keyed hash of the normalized value
 * (customer ids, which are your own ids, as they are), a reason, who added it and an optional expiry.
 * A blocked identifier's validation and redemption are refused; an allowed one skips the velocity
 * defenses (rate limits, lockouts) but never a cap.
 */
import { IDENTIFIER_TYPES, type IdentifierType } from '../domain/identity.js';
import { AppError } from '../errors.js';
import { insertAudit } from '../store/campaigns.js';
import {
  type ListEntry,
  type ListName,
  listEntries,
  matchingEntries,
  removeEntry,
  upsertEntry,
} from '../store/lists.js';
import type { Actor, ServiceContext } from './context.js';
import type { IdentifierHasher } from './identifiers.js';
import type { HashedIdentifier } from './request-context.js';

export const LIST_TYPES = ['customer', ...IDENTIFIER_TYPES] as const;
export type ListType = (typeof LIST_TYPES)[number];

export interface ListVerdict {
  blocked: ListEntry | null;
  allowed: boolean;
}

export class ListService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly hasher: IdentifierHasher,
  ) {}

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
    return this.ctx.db.transaction().execute(async (trx) => {
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
        { actor, action: `list.${entry.list}.add`, targetId: String(saved.id), reason: entry.reason },
        now,
      );
      return saved;
    });
  }

  async remove(id: number, actor: Actor, reason: string | null): Promise<ListEntry> {
    const now = this.ctx.clock.now();
    const removed = await this.ctx.db.transaction().execute(async (trx) => {
      const r = await removeEntry(trx, id, actor, now);
      if (r)
        await insertAudit(trx, { actor, action: `list.${r.list}.remove`, targetId: String(id), reason }, now);
      return r;
    });
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
    const entries = await matchingEntries(
      this.ctx.db,
      [{ type: 'customer', hash: customerId }, ...identifiers],
      this.ctx.clock.now(),
    );
    return {
      blocked: entries.find((e) => e.list === 'block') ?? null,
      allowed: entries.some((e) => e.list === 'allow'),
    };
  }
}
