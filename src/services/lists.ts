/**
 * Block and allow lists over any identifier type. Entries hold the keyed hash of the normalized value
 * (customer ids, which are your own ids, as they are), a reason, who added it and an optional expiry.
 * A blocked identifier's validation and redemption are refused; an allowed one skips the velocity
 * defenses (rate limits, lockouts) but never a cap.
 *
 * An `ip` entry may name a range in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`). A range cannot be
 * matched by hash, so its network is stored as is and tested against the client address (parsed in
 * memory, never stored); IPv4 `/32` and IPv6 `/64` are the single-address keys and stored as such.
 *
 * Judging happens on every validation and redemption, so each node keeps the active entries in memory
 * (up to CACHE_MAX_ENTRIES; beyond that it asks the database each time) and re-reads them when the
 * lists' change stamp moves: at once on the node that made the change, within STAMP_CHECK_MS on the
 * others.
 */
import {
  IDENTIFIER_TYPES,
  type IdentifierType,
  type IpAddress,
  type IpRange,
  inRange,
  ipAddressText,
  parseCidr,
} from '../domain/identity/index.js';
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

/**
 * `type:hash` → its active entries, and the range entries with their parsed networks; null when there
 * are too many entries to keep. Ranges are tested one by one: a prefix comparison each, cheap for lists
 * of thousands.
 */
type Snapshot = { byKey: Map<string, ListEntry[]>; ranges: { entry: ListEntry; range: IpRange }[] } | null;

function invalidValue(message: string): AppError {
  return new AppError('validation_failed', `value ${message}`, {
    errors: [{ field: 'body/value', message }],
  });
}

/**
 * An `ip` value with a `/`: the single-address key for IPv4 `/32` and IPv6 `/64`, a range otherwise.
 * IPv6 ranges narrower than `/64` are refused: one subscriber is handed a whole /64, and an address is
 * already judged by its /64.
 */
function ipRangeOf(value: string): { single: string } | { range: IpRange } {
  const parsed = parseCidr(value);
  if ('error' in parsed) throw invalidValue(parsed.error);
  const { range } = parsed;
  if (range.prefix === 0) throw invalidValue('names every address (prefix length 0)');
  if (range.version === 6 && range.prefix > 64) {
    throw invalidValue('is an IPv6 range narrower than /64 (addresses are judged by their /64)');
  }
  if (range.version === 4 && range.prefix === 32) return { single: range.text.slice(0, -'/32'.length) };
  if (range.version === 6 && range.prefix === 64) return { single: range.text };
  return { range };
}

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
    const ranges: { entry: ListEntry; range: IpRange }[] = [];
    for (const e of entries) {
      if (e.network !== null) {
        const parsed = parseCidr(e.network);
        if ('range' in parsed) ranges.push({ entry: e, range: parsed.range });
        continue;
      }
      const key = `${e.identifierType}:${e.identifierHash}`;
      const list = byKey.get(key);
      if (list) list.push(e);
      else byKey.set(key, [e]);
    }
    return { byKey, ranges };
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
    let value = entry.value;
    let network: string | null = null;
    if (entry.type === 'ip' && value.includes('/')) {
      const named = ipRangeOf(value);
      if ('single' in named) value = named.single;
      else network = named.range.text;
    }
    // A range's hash is that of its canonical text: never equal to an address's, equal for one range.
    const hash = network === null ? this.hashOf(entry.type, value) : this.hasher.hash('ip', network);
    const added = await this.ctx.db.transaction().execute(async (trx) => {
      const saved = await upsertEntry(
        trx,
        {
          list: entry.list,
          type: entry.type,
          hash,
          network,
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
          details: {
            type: entry.type,
            identifier_hash: hash,
            ...(network === null ? {} : { network }),
            expires_at: entry.expiresAt,
          },
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
            details: {
              type: r.identifierType,
              identifier_hash: r.identifierHash,
              ...(r.network === null ? {} : { network: r.network }),
            },
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

  /**
   * How the lists judge a request: blocked if any identifier is blocked, or the client address lies in
   * a blocked range (block wins over allow).
   */
  async judge(
    customerId: string,
    identifiers: HashedIdentifier[],
    address: IpAddress | null = null,
  ): Promise<ListVerdict> {
    const now = this.ctx.clock.now();
    const wanted = [{ type: 'customer', hash: customerId }, ...identifiers];
    const snapshot = await this.snapshot.get();
    let entries: ListEntry[];
    if (snapshot === null) {
      const text = address === null ? null : ipAddressText(address);
      entries = await matchingEntries(this.ctx.db, wanted, now, text);
    } else {
      const ranged =
        address === null ? [] : snapshot.ranges.filter((r) => inRange(address, r.range)).map((r) => r.entry);
      entries = wanted
        .flatMap((w) => snapshot.byKey.get(`${w.type}:${w.hash}`) ?? [])
        .concat(ranged)
        .filter((e) => e.expiresAt === null || e.expiresAt.getTime() > now.getTime());
    }
    return {
      blocked: entries.find((e) => e.list === 'block') ?? null,
      allowed: entries.some((e) => e.list === 'allow'),
    };
  }
}
