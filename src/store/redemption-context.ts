/** What a validation or redemption reads before deciding: one statement, batched per event-loop turn. */
import { CompiledQuery, type Kysely } from 'kysely';
import { dbFunction } from './functions.js';
import {
  type CampaignRecord,
  type CodeRecord,
  campaignFromRow,
  codeFromRow,
  parseJsonResult,
  type Redemption,
  type RedemptionRow,
  redemptionFromRow,
} from './rows.js';
import type { CampaignsTable, CodesTable, Database, JsonRow } from './schema.js';

export interface RedemptionContext {
  code: CodeRecord;
  campaign: CampaignRecord;
  customerUses: number;
  /** Uses held by the person(s) the customer and this request's identifiers belong to. */
  personUses: number;
  /** The code's partner has used up its cap (validation sees what the redemption would refuse). */
  partnerCapReached: boolean;
  /** The campaign's per-minute throttle is used up for this minute. */
  throttled: boolean;
  /** What the risk features read from the database (see FEATURES in domain/risk.ts). */
  risk: RiskFacts;
}

export interface RiskFacts {
  /** Customer accounts of the person(s) this request belongs to, this customer included. */
  linkedAccounts: number;
  /** The customer's redemptions in force, any campaign, counted up to 1,000. */
  customerRedemptions: number;
  /** Mean subtotal of the customer's last 20 redemptions in the cart's currency; null without any. */
  meanSubtotalMinor: number | null;
  /** Of the linked accounts, those created less than 7 days ago (as the checkout reported it). */
  linkedNewAccounts: number;
  /** Distinct payment instruments, devices and exact addresses the linked accounts used between them. */
  linkedCards: number;
  linkedDevices: number;
  linkedAddresses: number;
  /** Identifiers other than an address (card, device, phone, email) two or more linked accounts share. */
  linkedStrongLinks: number;
  /** The most other customers that share one of this request's identifiers (counted up to 100). */
  sharedIdentifierCustomers: number;
  /** The contract cap of the code's partner in this campaign; null without a partner or a cap. */
  partnerCap?: number | null | undefined;
}

/** What a validation or redemption reads before deciding (see loadRedemptionContext). */
export interface ContextQuery {
  normalized: string;
  customerId: string;
  /** Given for a redemption: the redemption this key already made is returned instead. */
  idempotencyKey: string | null;
  identityKeys: string[];
  currency: string;
  now: Date;
  /** An identifier shared by this many other customers links nobody (null: no limit). */
  sharedLimit?: number | null | undefined;
  /** context.account_created_at of the request, when sent. */
  accountCreatedAt?: Date | null | undefined;
}

export interface LoadedContext {
  context: RedemptionContext | null;
  existing: Redemption | null;
}

/**
 * Everything a validation or redemption decides on, in one round trip: the code, its campaign, the
 * customer's and person's use counts in the campaign, the facts the risk features read, and — when an
 * idempotency key is given — the redemption that key already produced (a repeat must return it even
 * if the code is used up by now).
 */
export const CONTEXT = dbFunction('promoguard_context', {
  normalized: 'text',
  customer_id: 'text',
  key: 'text?',
  keys: 'text[]',
  currency: 'text',
  now: 'timestamptz',
  shared_limit: 'integer?',
  account_created_at: 'timestamptz?',
});

export async function loadRedemptionContext(db: Kysely<Database>, q: ContextQuery): Promise<LoadedContext> {
  const args = CONTEXT.values({
    normalized: q.normalized,
    customer_id: q.customerId,
    key: q.idempotencyKey,
    keys: q.identityKeys,
    currency: q.currency,
    now: q.now.toISOString(),
    shared_limit: q.sharedLimit ?? null,
    account_created_at: q.accountCreatedAt?.toISOString() ?? null,
  });
  const result = await db.executeQuery<{ result: unknown }>(CompiledQuery.raw(CONTEXT.sql, args));
  return contextFromResult(result.rows[0]?.result, q);
}

/** What promoguard_context returns (sql/functions/context.sql). */
interface ContextResult {
  existing: RedemptionRow | null;
  code?: JsonRow<CodesTable>;
  campaign?: JsonRow<CampaignsTable>;
  customer_uses: number;
  person_uses: number;
  partner_full: boolean;
  partner_cap?: number | null;
  throttled: boolean;
  linked_accounts: number;
  identity: {
    cards: number;
    devices: number;
    addresses: number;
    strong_links: number;
    new_accounts: number;
  } | null;
  shared_max: number;
  customer_redemptions: number;
  mean_subtotal: number | null;
}

const NEW_ACCOUNT_MS = 7 * 24 * 3_600_000;

/** A customer alone in its person: the request's own identifiers are all its accounts use. */
function identityAlone(q: ContextQuery): NonNullable<ContextResult['identity']> {
  const count = (prefix: string) => q.identityKeys.filter((k) => k.startsWith(prefix)).length;
  const created = q.accountCreatedAt ?? null;
  return {
    cards: count('payment:'),
    devices: count('device:'),
    addresses: count('address:'),
    strong_links: 0,
    new_accounts: created !== null && q.now.getTime() - created.getTime() < NEW_ACCOUNT_MS ? 1 : 0,
  };
}

function contextFromResult(result: unknown, q: ContextQuery): LoadedContext {
  const row = result != null ? parseJsonResult<ContextResult>(result) : null;
  if (!row) return { context: null, existing: null };
  const existing = row.existing ? redemptionFromRow(row.existing) : null;
  if (!row.code || !row.campaign) return { context: null, existing };
  return {
    context: {
      code: codeFromRow(row.code),
      campaign: campaignFromRow(row.campaign),
      customerUses: row.customer_uses,
      personUses: row.person_uses,
      partnerCapReached: row.partner_full === true,
      throttled: row.throttled === true,
      risk: {
        linkedAccounts: row.linked_accounts,
        ...identityFacts(row.identity ?? identityAlone(q)),
        sharedIdentifierCustomers: Number(row.shared_max ?? 0),
        customerRedemptions: row.customer_redemptions,
        partnerCap: row.partner_cap == null ? null : Number(row.partner_cap),
        meanSubtotalMinor: row.mean_subtotal == null ? null : Number(row.mean_subtotal),
      },
    },
    existing,
  };
}

function identityFacts(i: NonNullable<ContextResult['identity']>) {
  return {
    linkedNewAccounts: Number(i.new_accounts),
    linkedCards: Number(i.cards),
    linkedDevices: Number(i.devices),
    linkedAddresses: Number(i.addresses),
    linkedStrongLinks: Number(i.strong_links),
  };
}

/** The context reads of several requests in one statement; the rows come back with their index. */
const CONTEXT_BATCH_SQL = `
  SELECT x.i, promoguard_context(p_normalized => x.normalized, p_customer_id => x.customer_id,
                                 p_key => x.idempotency_key,
                                 p_keys => ARRAY(SELECT jsonb_array_elements_text(x.identity_keys)),
                                 p_currency => x.currency, p_now => x.now, p_shared_limit => x.shared_limit,
                                 p_account_created_at => x.account_created_at) AS result
    FROM jsonb_to_recordset($1::jsonb) AS x(i integer, normalized text, customer_id text, idempotency_key text,
                                            identity_keys jsonb, currency text, now timestamptz,
                                            shared_limit integer, account_created_at timestamptz)`;

interface QueuedRead {
  query: ContextQuery;
  resolve: (loaded: LoadedContext) => void;
  reject: (err: unknown) => void;
}

/**
 * Context reads gathered per event-loop turn: the requests that reach their read in the same turn share
 * one statement (read-only and STABLE, so nothing is held or ordered between them). Under load a
 * statement then carries several requests' reads, and the database and this process pay its round trip
 * once — on PostgreSQL a round trip is a socket write and a backend wake-up, on PGlite every statement
 * has a fixed cost. A read alone in its turn goes as the single-read statement. No read waits beyond
 * the turn it was asked in.
 */
export class ContextReader {
  private queue: QueuedRead[] = [];
  /** Statements sent and reads they carried (a batch of n counts one statement, n reads). */
  readonly stats = { statements: 0, reads: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 64,
  ) {}

  read(query: ContextQuery): Promise<LoadedContext> {
    return new Promise((resolve, reject) => {
      this.queue.push({ query, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    while (this.queue.length > 0) void this.send(this.queue.splice(0, this.maxBatch));
  }

  private async send(batch: QueuedRead[]): Promise<void> {
    this.stats.statements++;
    this.stats.reads += batch.length;
    if (batch.length === 1) return this.alone(batch);
    let results: Map<number, unknown>;
    try {
      const items = batch.map(({ query: q }, i) => ({
        i,
        normalized: q.normalized,
        customer_id: q.customerId,
        idempotency_key: q.idempotencyKey,
        identity_keys: q.identityKeys,
        currency: q.currency,
        now: q.now.toISOString(),
        shared_limit: q.sharedLimit ?? null,
        account_created_at: q.accountCreatedAt?.toISOString() ?? null,
      }));
      const { rows } = await this.db.executeQuery<{ i: number; result: unknown }>(
        CompiledQuery.raw(CONTEXT_BATCH_SQL, [JSON.stringify(items)]),
      );
      results = new Map(rows.map((r) => [Number(r.i), r.result]));
    } catch {
      // One read must not fail the others (a value the JSON form cannot carry, say): each goes again alone,
      // and fails alone if it fails again.
      this.stats.statements += batch.length;
      await this.alone(batch);
      return;
    }
    batch.forEach((read, i) => {
      try {
        read.resolve(contextFromResult(results.get(i), read.query));
      } catch (err) {
        read.reject(err);
      }
    });
  }

  /** Each read as its own statement. */
  private async alone(reads: QueuedRead[]): Promise<void> {
    await Promise.all(
      reads.map((read) => loadRedemptionContext(this.db, read.query).then(read.resolve, read.reject)),
    );
  }
}
