/**
 * The customer history behind the account-takeover features (domain/takeover.ts): sightings of the
 * customer's devices, networks, cards and hours, read in one statement per event-loop turn for every
 * request of that turn, and written after the answer, batched the same way. And the decisions on
 * loyalty operations (conversions, wallet reads).
 */
import { CompiledQuery, type Kysely } from 'kysely';
import type { RiskAction } from '../domain/risk.js';
import type { TakeoverFacts } from '../domain/takeover.js';
import { parseJsonResult } from './rows.js';
import type { Database, LoyaltyDecisionsTable } from './schema.js';

export interface TakeoverQuery {
  customerId: string;
  /** Keyed hashes; null when the request did not carry the identifier. */
  device: string | null;
  prefix: string | null;
  payment: string | null;
  /** The UTC day whose conversions count toward the daily limit. */
  utcDay: string;
  now: Date;
}

/**
 * Known = a sighting of this customer (an order it made, or a step-up it passed). The rest of the row:
 * the hour histogram, the last conversion, the balance and today's conversions.
 */
const FACTS_SQL = `
  SELECT x.i,
    CASE WHEN x.device IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM customer_sightings s
      WHERE s.customer_id = x.customer_id AND s.kind = 'device' AND s.hash = x.device
) END AS device_known,
    CASE WHEN x.prefix IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM customer_sightings s
      WHERE s.customer_id = x.customer_id AND s.kind = 'prefix' AND s.hash = x.prefix
) END AS prefix_known,
    CASE WHEN x.payment IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM customer_sightings s
      WHERE s.customer_id = x.customer_id AND s.kind = 'payment' AND s.hash = x.payment
) END AS payment_known,
    (SELECT coalesce(jsonb_object_agg(s.hash, s.uses), '{}'::jsonb) FROM customer_sightings s
      WHERE s.customer_id = x.customer_id AND s.kind = 'hour') AS hours,
    (SELECT c.created_at FROM conversions c WHERE c.customer_id = x.customer_id
      ORDER BY c.id DESC LIMIT 1) AS last_conversion_at,
    coalesce((SELECT a.balance FROM points_accounts a WHERE a.customer_id = x.customer_id), 0) AS balance,
    coalesce((SELECT d.points FROM points_daily d WHERE d.customer_id = x.customer_id
      AND d.utc_day = x.utc_day), 0) AS converted_today
  FROM jsonb_to_recordset($1::jsonb) AS x(i integer, customer_id text, device text, prefix text,
                                          payment text, utc_day date, now timestamptz)`;

interface FactsRow {
  i: number;
  device_known: boolean | null;
  prefix_known: boolean | null;
  payment_known: boolean | null;
  hours: unknown;
  last_conversion_at: Date | string | null;
  balance: number | string;
  converted_today: number | string;
}

function factsFromRow(row: FactsRow): TakeoverFacts {
  const byHour = row.hours == null ? {} : parseJsonResult<Record<string, number>>(row.hours);
  const hours = Array.from({ length: 24 }, (_, h) => Number(byHour[String(h).padStart(2, '0')] ?? 0));
  return {
    deviceKnown: row.device_known,
    prefixKnown: row.prefix_known,
    paymentKnown: row.payment_known,
    hours,
    lastConversionAt: row.last_conversion_at == null ? null : new Date(row.last_conversion_at),
    balance: Number(row.balance),
    convertedToday: Number(row.converted_today),
  };
}

interface Queued<Q, R> {
  item: Q;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/** The reads of one event-loop turn share one statement (read-only; nothing is held between them). */
export class TakeoverReader {
  private queue: Queued<TakeoverQuery, TakeoverFacts>[] = [];
  readonly stats = { statements: 0, reads: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 64,
  ) {}

  read(query: TakeoverQuery): Promise<TakeoverFacts> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item: query, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    while (this.queue.length > 0) void this.send(this.queue.splice(0, this.maxBatch));
  }

  private async send(batch: Queued<TakeoverQuery, TakeoverFacts>[]): Promise<void> {
    this.stats.statements++;
    this.stats.reads += batch.length;
    try {
      const items = batch.map(({ item: q }, i) => ({
        i,
        customer_id: q.customerId,
        device: q.device,
        prefix: q.prefix,
        payment: q.payment,
        utc_day: q.utcDay,
        now: q.now.toISOString(),
      }));
      const { rows } = await this.db.executeQuery<FactsRow>(
        CompiledQuery.raw(FACTS_SQL, [JSON.stringify(items)]),
      );
      const byIndex = new Map(rows.map((r) => [Number(r.i), r]));
      batch.forEach((read, i) => {
        const row = byIndex.get(i);
        if (row) read.resolve(factsFromRow(row));
        else read.reject(new Error('takeover facts: no row for a read'));
      });
    } catch (err) {
      for (const read of batch) read.reject(err);
    }
  }
}

/** One action that teaches the customer's history: the identifiers it carried and when it happened. */
export interface Sighting {
  customerId: string;
  device: string | null;
  prefix: string | null;
  payment: string | null;
  /** A step-up verified the shopper: the identifiers are the customer's at once. */
  verified: boolean;
  at: Date;
}

const SIGHT_SQL = `
  INSERT INTO customer_sightings AS s (customer_id, kind, hash, first_at, last_at, verified_at, uses)
  SELECT x.customer_id, x.kind, x.hash, x.first_at, x.last_at, x.verified_at, x.uses
    FROM jsonb_to_recordset($1::jsonb) AS x(customer_id text, kind text, hash text, first_at timestamptz,
                                            last_at timestamptz, verified_at timestamptz, uses integer)
  ON CONFLICT (customer_id, kind, hash) DO UPDATE SET
    last_at = greatest(s.last_at, excluded.last_at),
    verified_at = coalesce(s.verified_at, excluded.verified_at),
    uses = s.uses + excluded.uses`;

interface SightingRow {
  customer_id: string;
  kind: 'device' | 'prefix' | 'payment' | 'hour';
  hash: string;
  first_at: string;
  last_at: string;
  verified_at: string | null;
  uses: number;
}

/** The rows of some sightings, one per (customer, kind, hash): one upsert cannot touch a row twice. */
export function sightingRows(sightings: readonly Sighting[]): SightingRow[] {
  const rows = new Map<string, SightingRow>();
  for (const s of sightings) {
    const at = s.at.toISOString();
    const hour = String(s.at.getUTCHours()).padStart(2, '0');
    const ids: [SightingRow['kind'], string | null][] = [
      ['device', s.device],
      ['prefix', s.prefix],
      ['payment', s.payment],
      ['hour', hour],
    ];
    for (const [kind, hash] of ids) {
      if (hash === null) continue;
      const key = `${s.customerId}\u0000${kind}\u0000${hash}`;
      const verified = s.verified && kind !== 'hour' ? at : null;
      const row = rows.get(key);
      if (!row) {
        rows.set(key, {
          customer_id: s.customerId,
          kind,
          hash,
          first_at: at,
          last_at: at,
          verified_at: verified,
          uses: 1,
        });
        continue;
      }
      row.uses += 1;
      if (at < row.first_at) row.first_at = at;
      if (at > row.last_at) row.last_at = at;
      if (verified && (row.verified_at === null || verified < row.verified_at)) row.verified_at = verified;
    }
  }
  return [...rows.values()].sort((a, b) =>
    // One order for every writer, so two batches upserting the same rows cannot deadlock.
    a.customer_id < b.customer_id
      ? -1
      : a.customer_id > b.customer_id
        ? 1
        : a.kind < b.kind
          ? -1
          : a.kind > b.kind
            ? 1
            : a.hash < b.hash
              ? -1
              : a.hash > b.hash
                ? 1
                : 0,
  );
}

/** How long a sighting may wait for others to share its statement, and how many one statement takes. */
const SIGHT_FLUSH_MS = 100;
const SIGHT_BATCH = 500;

/**
 * Sightings written after the answer, those of up to SIGHT_FLUSH_MS in one statement: on PGlite every
 * statement waits its turn behind the requests, so one per redemption would lengthen them all. A
 * failure is reported and dropped: the history is a feature, and missing one action only keeps a
 * device "new" a little longer.
 */
export class SightingsRecorder {
  private queue: Sighting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly writing = new Set<Promise<void>>();
  readonly stats = { statements: 0, sightings: 0, errors: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly onError: (err: unknown) => void,
  ) {}

  record(sighting: Sighting): void {
    this.queue.push(sighting);
    if (this.queue.length >= SIGHT_BATCH) this.flush();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), SIGHT_FLUSH_MS);
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    this.stats.statements++;
    this.stats.sightings += batch.length;
    const done = this.db
      .executeQuery(CompiledQuery.raw(SIGHT_SQL, [JSON.stringify(sightingRows(batch))]))
      .then(() => undefined)
      .catch((err: unknown) => {
        this.stats.errors++;
        this.onError(err);
      })
      .finally(() => this.writing.delete(done));
    this.writing.add(done);
  }

  /** Wait for the sightings queued and being written (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.queue.length > 0 || this.writing.size > 0) {
      if (this.queue.length > 0) this.flush();
      await Promise.all([...this.writing]);
    }
  }
}

export interface LoyaltyDecision {
  id: string;
  createdAt: Date;
  operation: 'conversion' | 'wallet_read';
  channel: 'checkout' | 'storefront';
  customerId: string;
  programId: string | null;
  idempotencyKey: string | null;
  conversionId: string | null;
  action: RiskAction;
  outcome: LoyaltyDecisionsTable['outcome'];
  context: Record<string, unknown> | null;
  decision: Record<string, unknown>;
}

const DECISION_COLUMNS =
  'id, created_at, operation, channel, customer_id, program_id, idempotency_key, conversion_id, action, outcome, context, decision';

function decisionValues(d: LoyaltyDecision): unknown[] {
  return [
    d.id,
    d.createdAt.toISOString(),
    d.operation,
    d.channel,
    d.customerId,
    d.programId,
    d.idempotencyKey,
    d.conversionId,
    d.action,
    d.outcome,
    d.context === null ? null : JSON.stringify(d.context),
    JSON.stringify(d.decision),
  ];
}

export async function insertLoyaltyDecision(db: Kysely<Database>, d: LoyaltyDecision): Promise<void> {
  await db.executeQuery(
    CompiledQuery.raw(
      `INSERT INTO loyalty_decisions (${DECISION_COLUMNS})
       VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb)`,
      decisionValues(d),
    ),
  );
}

/**
 * A conversion statement (`SELECT promoguard_convert(…) AS result`, its values) that also stores the
 * decision when it converts, in the same statement — so a conversion never commits without the
 * decision that let it through. Its conversion id is the one the function made.
 */
export function withConversionDecision(
  convertSql: string,
  values: unknown[],
  d: LoyaltyDecision,
): { sql: string; values: unknown[] } {
  const n = values.length;
  const p = (i: number) => `$${n + i}`;
  // The conversion id and the outcome come from the conversion itself, not from the values.
  const [id, createdAt, operation, channel, customerId, programId, key, , action, , context, decision] =
    decisionValues(d);
  return {
    sql: `WITH r AS (${convertSql}),
      d AS (INSERT INTO loyalty_decisions (${DECISION_COLUMNS})
        SELECT ${p(1)}::text, ${p(2)}::timestamptz, ${p(3)}::text, ${p(4)}::text, ${p(5)}::text, ${p(6)}::text,
               ${p(7)}::text, r.result->'conversion'->>'id', ${p(8)}::text, 'converted', ${p(9)}::jsonb,
               ${p(10)}::jsonb
          FROM r WHERE r.result->>'outcome' = 'converted')
      SELECT result FROM r`,
    values: [
      ...values,
      id,
      createdAt,
      operation,
      channel,
      customerId,
      programId,
      key,
      action,
      context,
      decision,
    ],
  };
}

/** The decision that let a conversion through (null for one made without the rules). */
export async function findConversionDecision(
  db: Kysely<Database>,
  customerId: string,
  conversionId: string,
): Promise<Record<string, unknown> | null> {
  const row = await db
    .selectFrom('loyalty_decisions')
    .select('decision')
    .where('customer_id', '=', customerId)
    .where('conversion_id', '=', conversionId)
    .executeTakeFirst();
  return row ? parseJsonResult<Record<string, unknown>>(row.decision) : null;
}

export async function listLoyaltyDecisions(
  db: Kysely<Database>,
  customerId: string,
  limit = 50,
): Promise<LoyaltyDecision[]> {
  const rows = await db
    .selectFrom('loyalty_decisions')
    .selectAll()
    .where('customer_id', '=', customerId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    createdAt: new Date(r.created_at),
    operation: r.operation,
    channel: r.channel,
    customerId: r.customer_id,
    programId: r.program_id,
    idempotencyKey: r.idempotency_key,
    conversionId: r.conversion_id,
    action: r.action,
    outcome: r.outcome,
    context: r.context == null ? null : parseJsonResult<Record<string, unknown>>(r.context),
    decision: parseJsonResult<Record<string, unknown>>(r.decision),
  }));
}
