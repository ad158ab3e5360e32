/**
 * Is the limit driving what the service drives? One real redemption goes through the service's own
 * RedemptionService (createApp on the bench database, in this process), and the parameters it hands
 * to REDEEM_SQL are captured; the bench's arguments for the same request must match them position by
 * position (generated ids and the clock excepted). The service's server secret comes back too, so the
 * limit hashes identifiers exactly as the server does.
 */
import { createApp } from '../../dist/app.js';
import { loadConfig } from '../../dist/config.js';
import { REDEEM_SQL, redeemArgs } from '../../dist/store/redemptions.js';
import { makeRedeemParams, SUBTOTAL_MINOR, USER_AGENT } from './limit.mjs';

/** Kysely with executeQuery observed: REDEEM_SQL's parameters are recorded, then run as usual. */
function capturing(db, captured) {
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === 'executeQuery') {
        return (query, ...rest) => {
          if (query?.sql === REDEEM_SQL) captured.push([...query.parameters]);
          return value.call(target, query, ...rest);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const GENERATED = /^(red|evt|per)_[0-9A-HJKMNP-TV-Z]{26}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The decision JSON without its id (each redemption's decision has its own). */
function decisionShape(text) {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && 'action' in parsed && 'rules' in parsed) {
      const { id: _id, ...rest } = parsed;
      return rest;
    }
  } catch {}
  return null;
}

function sameKind(a, b) {
  if (a === b) return true;
  if (typeof a === 'string' && typeof b === 'string') {
    const [da, db] = [decisionShape(a), decisionShape(b)];
    if (da && db) return JSON.stringify(da) === JSON.stringify(db);
  }
  if (typeof a === 'string' && typeof b === 'string') {
    if (GENERATED.test(a) && GENERATED.test(b) && a.slice(0, 4) === b.slice(0, 4)) return true;
    if (ISO.test(a) && ISO.test(b)) return true;
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * `opened`: { db: Kysely, backend } on the bench database (the server's own opener). `row`: an unused
 * spread code, which this redemption uses up. Returns { hasher, matches, differences, outcome }.
 */
export async function checkFidelity(opened, row) {
  const captured = [];
  const app = await createApp({
    config: loadConfig({ LOG_LEVEL: 'silent' }),
    logger: { error: () => {} },
    database: { db: capturing(opened.db, captured), backend: opened.backend, close: async () => {} },
    relay: false,
  });
  const req = {
    customerId: 'cus_fidelity_check',
    orderId: 'ord_fidelity_check',
    idempotencyKey: 'bench-fidelity-check',
    ip: '192.0.2.77',
  };
  try {
    const result = await app.redemptions.redeem(
      {
        code: row.code,
        customer: { id: req.customerId },
        cart: { currency: row.currency, subtotalMinor: SUBTOTAL_MINOR, shippingMinor: 0 },
        orderId: req.orderId,
        context: { ip: req.ip, userAgent: USER_AGENT },
      },
      req.idempotencyKey,
    );
    const service = captured[0];
    // The decision the service stored for this request is the template the limit stores with each of
    // its redemptions (same rules, same shape); the default rule pack is on, as in the served runs.
    const decision = service ? decisionShape(service[20]) : null;
    const bench = redeemArgs(makeRedeemParams(row, req, app.hasher, decision));
    const differences = [];
    if (!service) differences.push({ position: null, note: 'the service issued no REDEEM_SQL' });
    else {
      const n = Math.max(service.length, bench.length);
      for (let i = 0; i < n; i++) {
        if (!sameKind(service[i], bench[i]))
          differences.push({ position: i + 1, service: service[i], bench: bench[i] });
      }
    }
    return {
      hasher: app.hasher,
      decision,
      matches: differences.length === 0,
      differences,
      outcome: result.ok ? 'redeemed' : `refused: ${result.reason}`,
      serviceArgs: service ?? null,
    };
  } finally {
    await app.close();
  }
}
