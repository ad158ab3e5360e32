/**
 * The limit: the one statement a redemption issues (REDEEM_SQL with redeemArgs, imported from the
 * built service, never retyped), driven straight at the database with the same number of requests in
 * flight as the HTTP load. Whatever the service adds on top — HTTP, auth, defenses, the context query,
 * the decision — shows up as the gap between the two figures.
 */
import { randomBytes } from 'node:crypto';
import { CompiledQuery } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../dist/config.js';
import { newId } from '../../dist/lib/ids.js';
import { IdentifierHasher } from '../../dist/security/identifier-hasher.js';
import { identityKeys, resolveContext } from '../../dist/security/request-context.js';
import { fingerprint } from '../../dist/services/redemptions.js';
import { openDatabase } from '../../dist/store/connect.js';
import { REDEEM_SQL, redeemArgs } from '../../dist/store/redemptions.js';
import { LatencyRecorder } from './stats.mjs';

/** The service passes the configured limit on linking through widely shared identifiers; so does the limit. */
const SHARED_LIMIT = loadConfig({}).IDENTITY_SHARED_LIMIT;

export const USER_AGENT = 'promoguard-bench/1 (autocannon)';
export const SUBTOTAL_MINOR = 10_000;

/** The rows a redemption is decided on, as the bench reads them back from the database. */
export const CODE_ROWS_SQL = `
  SELECT k.id AS code_id, k.code, k.normalized, k.partner, c.id AS campaign_id, c.name AS campaign_name,
         c.version, c.currency, c.amount_minor, c.per_customer_cap, c.per_person_cap, c.throttle_per_minute
    FROM codes k JOIN campaigns c ON c.id = k.campaign_id
   WHERE c.name LIKE $1 AND k.status = 'active' AND (k.max_uses IS NULL OR k.uses < k.max_uses)
   ORDER BY k.id`;

/** A database the bench itself talks to: PostgreSQL through pg, PGlite through the service's own opener. */
export async function openBenchDb(backend, { databaseUrl, dataDir, connections }) {
  if (backend === 'postgres') {
    const clients = [];
    try {
      for (let i = 0; i < connections; i++) {
        const client = new pg.Client({ connectionString: databaseUrl, application_name: 'promoguard-bench' });
        // A connection ended under us (the database dropped on Ctrl-C) fails its query; no crash.
        client.on('error', () => {});
        await client.connect();
        clients.push(client);
      }
    } catch (err) {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      throw err;
    }
    return {
      backend,
      lanes: clients.length,
      query: async (sql, params, lane = 0) => (await clients[lane].query(sql, params)).rows,
      close: () => Promise.all(clients.map((c) => c.end().catch(() => {}))),
    };
  }
  // PGlite has one session; the service reaches it through its Kysely dialect, which queues callers
  // FIFO. The bench opens the data folder exactly as the server does (same parsers and serializers).
  const opened = await openDatabase({ dataDir });
  return {
    backend,
    kysely: opened,
    lanes: connections,
    query: async (sql, params) => (await opened.db.executeQuery(CompiledQuery.raw(sql, params))).rows,
    close: () => opened.close(),
  };
}

/**
 * The arguments RedemptionService passes for this code and request: the same id kinds, the real
 * request fingerprint, the campaign's caps and version, the identity keys and the stored context the
 * service derives (through its own resolveContext/identityKeys) from the HTTP load's context — a
 * distinct client address and the user agent. `checkFidelity` holds this against a captured call.
 */
/**
 * `decision`: the risk decision the service stores with each redemption (a template captured from the
 * service by the fidelity check, without its id: the redeem function then gives it the redemption's).
 */
export function makeRedeemParams(row, req, hasher, decision = null) {
  const now = new Date();
  const resolved = resolveContext(hasher, { ip: req.ip, userAgent: USER_AGENT });
  return {
    id: newId('redemption', now.getTime()),
    eventId: newId('event', now.getTime()),
    idempotencyKey: req.idempotencyKey,
    fingerprint: fingerprint(
      row.normalized,
      {
        code: row.code,
        customer: { id: req.customerId },
        cart: { currency: row.currency, subtotalMinor: SUBTOTAL_MINOR, shippingMinor: 0 },
        orderId: req.orderId,
      },
      resolved.stored,
    ),
    codeId: row.code_id,
    campaignId: row.campaign_id,
    campaignVersion: Number(row.version),
    customerId: req.customerId,
    orderId: req.orderId,
    currency: row.currency,
    subtotalMinor: SUBTOTAL_MINOR,
    discountMinor: Number(row.amount_minor),
    now,
    perCustomerCap: row.per_customer_cap === null ? null : Number(row.per_customer_cap),
    perPersonCap: row.per_person_cap === null ? null : Number(row.per_person_cap),
    throttlePerMinute: row.throttle_per_minute === null ? null : Number(row.throttle_per_minute),
    partner: row.partner,
    sharedLimit: SHARED_LIMIT,
    personCandidate: newId('person', now.getTime()),
    identityKeys: identityKeys(req.customerId, resolved),
    context: Object.keys(resolved.stored).length > 0 ? resolved.stored : null,
    decision,
    review: false,
  };
}

/** The request of number `seq` in a limit run tagged `tag`. */
export function limitRequest(tag, seq) {
  return {
    customerId: `cus_${tag}_${seq}`,
    orderId: `ord_${tag}_${seq}`,
    idempotencyKey: `${tag}-${seq}`,
    ip: ipFor(seq),
  };
}

/** A distinct IPv4 address per request number (10.0.0.1 onwards, 16.7 million before repeating). */
export function ipFor(seq) {
  const n = (seq % 16_777_214) + 1;
  return `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function newHasher() {
  return new IdentifierHasher(randomBytes(32));
}

/**
 * Drive REDEEM_SQL for `durationMs` with `concurrency` requests in flight. `nextRow()` gives the code
 * row of the next redemption, or null when the pool is used up (the run then stops early and says so).
 */
export async function driveRedeem(
  db,
  { concurrency, durationMs, nextRow, tag, hasher = newHasher(), decision = null },
) {
  const latency = new LatencyRecorder();
  const outcomes = {};
  const errors = {};
  let seq = 0;
  let exhausted = false;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async (lane) => {
    while (performance.now() < deadline) {
      const row = nextRow();
      if (!row) {
        exhausted = true;
        return;
      }
      const args = redeemArgs(makeRedeemParams(row, limitRequest(tag, seq++), hasher, decision));
      const t0 = performance.now();
      try {
        const rows = await db.query(REDEEM_SQL, args, lane % db.lanes);
        latency.record(performance.now() - t0);
        const result = typeof rows[0]?.result === 'string' ? JSON.parse(rows[0].result) : rows[0]?.result;
        const key = result?.outcome === 'refused' ? `refused:${result.reason}` : String(result?.outcome);
        outcomes[key] = (outcomes[key] ?? 0) + 1;
      } catch (err) {
        const key = err?.code ? `sqlstate ${err.code}` : String(err?.message ?? err).slice(0, 80);
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, lane) => worker(lane)));
  const elapsedMs = performance.now() - started;
  const completed = Object.values(outcomes).reduce((a, b) => a + b, 0);
  return {
    durationMs: Math.round(elapsedMs),
    completed,
    redeemed: outcomes.redeemed ?? 0,
    rate: (outcomes.redeemed ?? 0) / (elapsedMs / 1000),
    outcomes,
    errors,
    exhausted,
    latency: latency.summary(),
  };
}
