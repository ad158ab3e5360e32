/**
 * The abuse defenses replayed as attacks through the real HTTP app (Fastify inject), each asserting that
 * the defense holds:
 *
 * - attempt limits and lockouts (code spraying from one IP, a device shared by 100 IPs, an IPv6 /64
 *   rotation, an allow-listed device, what a 429 says, the replay of a redemption made before the lock)
 *   on every database backend AND on every limiter store: process memory and Redis (TEST_REDIS_URL;
 *   required under CI by the harness);
 * - the controls that do not depend on the limiter store (per-person caps across linked accounts,
 *   pause, partner revocation and caps, block lists, throttles, uniform storefront answers) on every
 *   database backend, with the real default limits switched on.
 *
 * The limits are the production defaults (60 attempts a minute per key, a lock after 10 consecutive
 * failures, 60 s first lock), not the test harness's "unlimited" ones. On Redis every app gets a key
 * namespace of its own (REDIS_KEY_PREFIX from the harness's unique prefix), deleted again afterwards.
 * Inside one app every test uses its own client addresses, customers and devices, so tests never share
 * a rate-limit key.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REFUSAL_MESSAGE } from '../../src/http/routes/redemptions.js';
import {
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  tally,
  unique,
} from '../support/app.js';
import { backends, type TestBackend } from '../support/backends.js';
import { guardStores, type TestGuardStore } from '../support/redis.js';

/** The production defaults (src/config.ts), spelled out: the harness would otherwise switch them off. */
const RATE_PER_MINUTE = 60;
const LOCK_AFTER_FAILURES = 10;
const LOCK_BASE_SECONDS = 60;
const REAL_LIMITS = {
  // These suites are about the limiter and the lists; the risk rules (which would block 100 accounts
  // on one device long before the limiter) have suites of their own.
  RISK_DEFAULT_PACK: 'off',
  RATE_LIMIT_PER_MINUTE: String(RATE_PER_MINUTE),
  LOCKOUT_AFTER_FAILURES: String(LOCK_AFTER_FAILURES),
  // The address limits equal the others here, so one suite covers every key kind with one set of numbers
  // (their own defaults are looser: see the address-limit test below).
  RATE_LIMIT_PER_MINUTE_PER_ADDRESS: String(RATE_PER_MINUTE),
  LOCKOUT_AFTER_FAILURES_PER_ADDRESS: String(LOCK_AFTER_FAILURES),
  LOCKOUT_BASE_SECONDS: String(LOCK_BASE_SECONDS),
  LOCKOUT_MAX_SECONDS: '86400',
};

const NOW = '2026-06-01T12:00:05Z';

interface DefendedApp {
  t: TestApp;
  /** Redis key namespace of this app's limiter (also set, unused, on the memory store). */
  keyPrefix: string;
  close(): Promise<void>;
}

/** The app with the real limits, its limiter on `store`, in a key namespace of its own. */
async function startDefendedApp(
  backend: TestBackend,
  store: TestGuardStore,
  clock: TestClock,
): Promise<DefendedApp> {
  const opened = await store.open();
  const env: Record<string, string> = { ...REAL_LIMITS, REDIS_KEY_PREFIX: opened.keyPrefix };
  if (store.name === 'redis') env['REDIS_URL'] = testRedisUrl();
  let t: TestApp;
  try {
    t = await startTestApp(backend, { clock, env });
  } catch (err) {
    await opened.close();
    throw err;
  }
  return {
    t,
    keyPrefix: opened.keyPrefix,
    async close() {
      try {
        await t.close();
      } finally {
        // Deletes every key under this app's prefix: only keys this app created.
        await opened.close();
      }
    },
  };
}

function testRedisUrl(): string {
  const url = process.env['TEST_REDIS_URL'];
  if (!url) throw new Error('the Redis limiter store is listed but TEST_REDIS_URL is not set');
  return url;
}

async function redisKeyCount(keyPrefix: string): Promise<number> {
  const client = new Redis(testRedisUrl(), { lazyConnect: true });
  await client.connect();
  try {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 500);
      count += keys.length;
      cursor = next;
    } while (cursor !== '0');
    return count;
  } finally {
    client.disconnect();
  }
}

let addressSequence = 0;
/** A client IPv4 address no other test in this file uses. */
function nextIPv4(): string {
  addressSequence += 1;
  return `10.${(addressSequence >> 16) & 255}.${(addressSequence >> 8) & 255}.${addressSequence & 255}`;
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A code nobody issued: letters and digits that match no stored code and no generated batch. */
function randomCode(): string {
  return `SPRAY${hex(6).toUpperCase()}`;
}

async function fraudKey(t: TestApp): Promise<{ id: string; secret: string }> {
  const r = await t.call('POST', '/v1/api-keys', { body: { name: 'fraud analyst', scopes: ['fraud'] } });
  expect(r.statusCode, r.body).toBe(201);
  const body = r.json() as { id: string; secret: string };
  return { id: body.id, secret: body.secret };
}

/** A checkout backend validating a code for a shopper (the shopper's address in context.ip). */
function validate(
  t: TestApp,
  code: string,
  customerId: string,
  context?: Record<string, unknown>,
): Promise<LightMyRequestResponse> {
  return t.call('POST', '/v1/validations', {
    key: t.keys.checkout,
    body: checkoutBody(code, { customer: { id: customerId }, ...(context ? { context } : {}) }),
  });
}

/** A checkout backend redeeming a code (a fresh order and Idempotency-Key each time). */
function redeem(
  t: TestApp,
  code: string,
  customerId: string,
  context?: Record<string, unknown>,
): Promise<LightMyRequestResponse> {
  return t.call('POST', '/v1/redemptions', {
    key: t.keys.checkout,
    body: checkoutBody(code, {
      customer: { id: customerId },
      order_id: unique('ORD'),
      ...(context ? { context } : {}),
    }),
    headers: { 'idempotency-key': unique('IDEM-') },
  });
}

async function customerToken(t: TestApp, customerId: string): Promise<string> {
  const r = await t.call('POST', '/v1/customer-tokens', {
    key: t.keys.checkout,
    body: { customer_id: customerId },
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json().token as string;
}

/** A storefront validating with a customer token; its client address is its connection's. */
function storefrontValidate(
  t: TestApp,
  token: string,
  code: string,
  customerId: string,
  remoteAddress: string,
): Promise<LightMyRequestResponse> {
  return t.server.inject({
    method: 'POST',
    url: '/v1/validations',
    headers: { authorization: `Bearer ${token}` },
    payload: checkoutBody(code, { customer: { id: customerId } }),
    remoteAddress,
  });
}

/** A 429 too_many_requests problem with a usable Retry-After (whole seconds, at most the first lock). */
function expectTooManyRequests(r: LightMyRequestResponse): void {
  expect(r.statusCode, r.body).toBe(429);
  expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = r.json() as { code: string; status: number; retry_after_seconds?: unknown };
  expect(body).toMatchObject({ code: 'too_many_requests', status: 429 });
  const retryAfter = Number(r.headers['retry-after']);
  expect(Number.isInteger(retryAfter), `Retry-After: ${String(r.headers['retry-after'])}`).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
  expect(body.retry_after_seconds).toBe(retryAfter);
}

/** The refusal reason of a 422 redemption_refused. */
function refusal(r: LightMyRequestResponse): string {
  expect(r.statusCode, r.body).toBe(422);
  const body = r.json() as { code: string; reason: string };
  expect(body.code).toBe('redemption_refused');
  return body.reason;
}

const validAnswer = { valid: true, discount_minor: 500, currency: 'USD' };

// ---------------------------------------------------------------------------------------------------
// Attempt limits and lockouts: every database backend × every limiter store
// ---------------------------------------------------------------------------------------------------

const limiterMatrix = backends.flatMap((backend) =>
  guardStores.map((store) => [backend.name, store.name, backend, store] as const),
);

describe.each(limiterMatrix)('attempt limits on %s with %s counters', (_db, _store, backend, store) => {
  const clock = new TestClock(new Date(NOW));
  let d: DefendedApp;
  let t: TestApp;
  let fraud: { id: string; secret: string };
  /** A real public code of an active campaign: valid for anyone. */
  let validCode: string;

  beforeAll(async () => {
    d = await startDefendedApp(backend, store, clock);
    t = d.t;
    fraud = await fraudKey(t);
    validCode = (await campaignWithCode(t)).code;
  });
  afterAll(async () => d?.close());

  it('one IP gets at most 60 answers a minute, then 429 with Retry-After (customers differ)', async () => {
    const ip = nextIPv4();
    const results: LightMyRequestResponse[] = [];
    // Only valid codes: nothing fails, so only the per-minute rate can stop this IP.
    for (let i = 0; i < 100; i++) results.push(await validate(t, validCode, unique('CUS_RATE_'), { ip }));
    const answered = results.filter((r) => r.statusCode !== 429);
    expect(answered.length).toBe(RATE_PER_MINUTE);
    for (const r of results.slice(0, RATE_PER_MINUTE)) {
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().valid).toBe(true);
    }
    for (const r of results.slice(RATE_PER_MINUTE)) {
      expectTooManyRequests(r);
      expect(r.json().reason).toBe('rate_limited');
    }
    // Another client address is not affected.
    const other = await validate(t, validCode, unique('CUS_RATE_'), { ip: nextIPv4() });
    expect(other.json()).toMatchObject(validAnswer);
    if (store.name === 'redis') expect(await redisKeyCount(d.keyPrefix)).toBeGreaterThan(0);
  });

  it('a known code between guesses does not save a guesser from the lock', async () => {
    const ip = nextIPv4();
    const results: LightMyRequestResponse[] = [];
    // A valid validation after every guess: were successes to reset the run, this would never lock.
    for (let i = 0; i < 24; i++) {
      results.push(await validate(t, i % 2 === 1 ? validCode : randomCode(), unique('CUS_MIX_'), { ip }));
    }
    const firstLocked = results.findIndex((r) => r.statusCode === 429);
    expect(firstLocked, 'the IP is locked').toBeGreaterThan(0);
    // The tenth guess is attempt 19 (0-based 18); the very next attempt — a valid code — is refused.
    expect(firstLocked).toBe(2 * LOCK_AFTER_FAILURES - 1);
    expect(results[firstLocked]?.json().reason).toBe('locked');
  });

  it('one IP spraying 5,000 random codes is locked after 10 failures, even for a valid code', async () => {
    const ip = nextIPv4();
    const spray = Array.from({ length: 5000 }, randomCode);
    /** Attempts sent after the lock is first seen, to show it holds (then the spray stops). */
    const tail = 100;
    let sent = 0;
    let firstRefused: number | null = null;
    const answered: LightMyRequestResponse[] = [];
    const refused: LightMyRequestResponse[] = [];
    for (const code of spray) {
      const r = await validate(t, code, unique('CUS_SPRAY_'), { ip });
      sent += 1;
      if (r.statusCode === 429) {
        refused.push(r);
        firstRefused ??= sent;
      } else {
        answered.push(r);
      }
      if (firstRefused !== null && sent >= firstRefused + tail) break;
    }

    // More than a minute's worth of attempts were sent, and at most a minute's worth were answered.
    expect(sent).toBeGreaterThan(RATE_PER_MINUTE);
    expect(answered.length).toBeLessThanOrEqual(RATE_PER_MINUTE);
    // Exactly the 10 failures that lock the key were answered (uniform "not found" to a checkout key)...
    expect(answered.length).toBe(LOCK_AFTER_FAILURES);
    for (const r of answered) {
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toEqual({ valid: false, reason: 'code_not_found', message: REFUSAL_MESSAGE });
    }
    // ...and the refusals began with the very next attempt: at 11 attempts this key cannot be over a
    // rate of 60 a minute, so this 429 is the lock. Every later attempt is refused as well.
    expect(firstRefused).toBe(LOCK_AFTER_FAILURES + 1);
    expect(refused.length).toBe(sent - LOCK_AFTER_FAILURES);
    for (const r of refused) expectTooManyRequests(r);

    // While locked, the IP is refused a real, valid code: for validation and for redemption.
    expectTooManyRequests(await validate(t, validCode, unique('CUS_SPRAY_'), { ip }));
    expectTooManyRequests(await redeem(t, validCode, unique('CUS_SPRAY_'), { ip }));
    // The lock is the IP's, not everyone's: the same code from another address is served.
    const elsewhere = await validate(t, validCode, unique('CUS_SPRAY_'), { ip: nextIPv4() });
    expect(elsewhere.json()).toMatchObject(validAnswer);
  });

  it('says in the 429 problem body whether the caller is locked or only over the rate', async () => {
    const lockedIp = nextIPv4();
    for (let i = 0; i < LOCK_AFTER_FAILURES; i++) {
      const r = await validate(t, randomCode(), unique('CUS_WHY_'), { ip: lockedIp });
      expect(r.statusCode, r.body).toBe(200);
    }
    const locked = await validate(t, validCode, unique('CUS_WHY_'), { ip: lockedIp });
    expectTooManyRequests(locked);

    const busyIp = nextIPv4();
    for (let i = 0; i < RATE_PER_MINUTE; i++) {
      const r = await validate(t, validCode, unique('CUS_WHY_'), { ip: busyIp });
      expect(r.statusCode, r.body).toBe(200);
    }
    const busy = await validate(t, validCode, unique('CUS_WHY_'), { ip: busyIp });
    expectTooManyRequests(busy);

    expect(locked.json()).toMatchObject({ reason: 'locked' });
    expect(busy.json()).toMatchObject({ reason: 'rate_limited' });
  });

  it('still returns the first redemption to a repeat after its caller was locked out', async () => {
    const { code } = await campaignWithCode(t);
    const customer = unique('CUS_REPLAY_');
    const ip = nextIPv4();
    const send = (idempotencyKey: string) =>
      t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        headers: { 'idempotency-key': idempotencyKey },
        body: checkoutBody(code, { customer: { id: customer }, context: { ip } }),
      });
    const key = unique('IDEM-');
    const first = await send(key);
    expect(first.statusCode, first.body).toBe(201);
    for (let i = 0; i < LOCK_AFTER_FAILURES; i++) {
      const r = await validate(t, randomCode(), customer, { ip });
      expect(r.statusCode, r.body).toBe(200);
    }
    expectTooManyRequests(await validate(t, code, customer, { ip }));
    // The checkout backend's retry of an order that went through gets the same answer...
    const repeat = await send(key);
    expect(repeat.statusCode, repeat.body).toBe(201);
    expect(repeat.headers['idempotent-replayed']).toBe('true');
    expect(repeat.json().id).toBe(first.json().id);
    // ...while a new redemption from the locked caller is refused.
    expectTooManyRequests(await send(unique('IDEM-')));
  });

  it('100 IPs sharing one device id are stopped by the device key: at most 60 get through', async () => {
    const device = `dev-${hex(8)}`;
    const results: LightMyRequestResponse[] = [];
    for (let i = 0; i < 100; i++) {
      results.push(await validate(t, validCode, unique('CUS_DEV_'), { ip: nextIPv4(), device_id: device }));
    }
    const through = results.filter((r) => r.statusCode !== 429);
    expect(through.length).toBeLessThanOrEqual(RATE_PER_MINUTE);
    expect(through.length).toBe(RATE_PER_MINUTE);
    for (const r of through) expect(r.json()).toMatchObject(validAnswer);
    for (const r of results.slice(RATE_PER_MINUTE)) expectTooManyRequests(r);
    // Another device from a fresh address is still served.
    const other = await validate(t, validCode, unique('CUS_DEV_'), {
      ip: nextIPv4(),
      device_id: `dev-${hex(8)}`,
    });
    expect(other.json()).toMatchObject(validAnswer);
  });

  it('an IPv6 storefront rotating addresses inside one /64 is one key; another /64 is still served', async () => {
    const site = hex(2);
    const subnet = randomBytes(2).readUInt16BE(0);
    const net = `2001:db8:${site}:${subnet.toString(16)}`;
    const results: LightMyRequestResponse[] = [];
    const addresses = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const address = `${net}:${hex(2)}:${hex(2)}:${hex(2)}:${hex(2)}`;
      addresses.add(address);
      const customer = unique('CUS_V6_');
      const token = await customerToken(t, customer);
      results.push(await storefrontValidate(t, token, validCode, customer, address));
    }
    expect(addresses.size).toBeGreaterThan(90);
    const through = results.filter((r) => r.statusCode !== 429);
    expect(through.length).toBeLessThanOrEqual(RATE_PER_MINUTE);
    expect(through.length).toBe(RATE_PER_MINUTE);
    for (const r of through) expect(r.json()).toMatchObject({ valid: true });
    for (const r of results.slice(RATE_PER_MINUTE)) expectTooManyRequests(r);

    // Same first three groups, a different fourth: another /64, another key.
    const neighbour = `2001:db8:${site}:${(subnet ^ 1).toString(16)}::1`;
    const customer = unique('CUS_V6_');
    const served = await storefrontValidate(
      t,
      await customerToken(t, customer),
      validCode,
      customer,
      neighbour,
    );
    expect(served.statusCode, served.body).toBe(200);
    expect(served.json()).toMatchObject({ valid: true });
  });

  it('an allow-listed device skips rate limits and lockouts, but a cap still holds', async () => {
    const device = `qa-rig-${hex(8)}`;
    const listed = await t.call('POST', '/v1/lists', {
      key: fraud.secret,
      body: { list: 'allow', type: 'device', value: device, reason: 'checkout QA rig' },
    });
    expect(listed.statusCode, listed.body).toBe(201);

    const ip = nextIPv4();
    const customer = unique('CUS_ALLOW_');
    const attempts = RATE_PER_MINUTE + 20;
    const results: LightMyRequestResponse[] = [];
    for (let i = 0; i < attempts; i++) {
      // The first 15 are failures: more than enough to lock a key that is counted.
      const code = i < 15 ? randomCode() : validCode;
      results.push(await validate(t, code, customer, { ip, device_id: device }));
    }
    const through = results.filter((r) => r.statusCode !== 429);
    expect(through.length).toBe(attempts);
    expect(through.length).toBeGreaterThan(RATE_PER_MINUTE);
    for (const r of results.slice(15)) expect(r.json()).toMatchObject(validAnswer);

    // No cap is skipped: once per customer is once per customer, allow-listed or not.
    const { code } = await campaignWithCode(t, { per_customer_cap: 1 });
    const first = await redeem(t, code, customer, { ip, device_id: device });
    expect(first.statusCode, first.body).toBe(201);
    expect(refusal(await redeem(t, code, customer, { ip, device_id: device }))).toBe('customer_cap_reached');
  });
});

// ---------------------------------------------------------------------------------------------------
// Caps, links and controls: every database backend (limits on, in memory)
// ---------------------------------------------------------------------------------------------------

const memoryStore = guardStores.find((s) => s.name === 'memory');
if (!memoryStore) throw new Error('the in-memory limiter store is always listed');

describe.each(backends.map((b) => [b.name, b] as const))(
  'client addresses have looser limits of their own on %s',
  (_name, backend) => {
    const clock = new TestClock(new Date(NOW));
    let t: TestApp;
    let validCode: string;
    beforeAll(async () => {
      t = await startTestApp(backend, {
        clock,
        env: {
          ...REAL_LIMITS,
          RISK_DEFAULT_PACK: 'off',
          RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '150',
          LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '25',
        },
      });
      validCode = (await campaignWithCode(t)).code;
    });
    afterAll(async () => t?.close());

    it('an office of 120 shoppers behind one address is served; the address stops at its own limit', async () => {
      const ip = nextIPv4();
      const results: LightMyRequestResponse[] = [];
      for (let i = 0; i < 160; i++) results.push(await validate(t, validCode, unique('CUS_OFFICE_'), { ip }));
      // 150 a minute for the address (not the 60 of a customer or a device), then 429.
      expect(results.filter((r) => r.statusCode === 200).length).toBe(150);
      for (const r of results.slice(150)) expectTooManyRequests(r);
      // One customer is still held to 60 a minute, from any address.
      const customer = unique('CUS_ONE_');
      const own: LightMyRequestResponse[] = [];
      for (let i = 0; i < 61; i++) own.push(await validate(t, validCode, customer, { ip: nextIPv4() }));
      expect(own.filter((r) => r.statusCode === 200).length).toBe(RATE_PER_MINUTE);
      expectTooManyRequests(own[60] as LightMyRequestResponse);
    });

    it("an address locks after its own run of failures (25 here), not a customer's 10", async () => {
      clock.advance(120_000);
      const ip = nextIPv4();
      const results: LightMyRequestResponse[] = [];
      // Different shoppers mistyping codes behind one NAT: each customer fails once.
      for (let i = 0; i < 26; i++) results.push(await validate(t, `NOPE${i}X`, unique('CUS_NAT_'), { ip }));
      expect(results.slice(0, 25).every((r) => r.statusCode === 200)).toBe(true);
      expectTooManyRequests(results[25] as LightMyRequestResponse);
      expect((results[25] as LightMyRequestResponse).json().reason).toBe('locked');
    });
  },
);

describe.each(backends.map((b) => [b.name, b] as const))('abuse controls on %s', (_name, backend) => {
  const clock = new TestClock(new Date(NOW));
  let d: DefendedApp;
  let t: TestApp;
  let fraud: { id: string; secret: string };

  beforeAll(async () => {
    d = await startDefendedApp(backend, memoryStore, clock);
    t = d.t;
    fraud = await fraudKey(t);
  });
  afterAll(async () => d?.close());
  beforeEach(() => clock.set(NOW));

  async function links(customerId: string) {
    const r = await t.call('GET', `/v1/customers/${customerId}/links`, { key: fraud.secret });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as {
      customer_id: string;
      person_id: string | null;
      customers: string[];
      shared_identifiers: { type: string; identifier_hash: string; customers: string[] }[];
    };
  }

  async function auditRows(action: string, targetId: string) {
    const { rows } = await sql<{ actor: string; reason: string | null; details: unknown }>`
      SELECT actor, reason, details FROM audit_log
       WHERE action = ${action} AND target_id = ${targetId} ORDER BY id`.execute(t.app.db);
    return rows.map((r) => ({
      actor: r.actor,
      reason: r.reason,
      details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown>,
    }));
  }

  /** Generate `count` single-use codes for `partner`; returns their texts. */
  async function partnerCodes(campaignId: string, partner: string, prefix: string, count: number) {
    const made = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
      key: t.keys.marketing,
      body: { generate: { count, prefix, partner } },
    });
    expect(made.statusCode, made.body).toBe(201);
    const listed = await t.call('GET', `/v1/campaigns/${campaignId}/codes?limit=200`, {
      key: t.keys.marketing,
    });
    expect(listed.statusCode, listed.body).toBe(200);
    const codes = (listed.json().data as { code: string; partner: string | null }[])
      .filter((c) => c.partner === partner)
      .map((c) => c.code);
    expect(codes).toHaveLength(count);
    return codes;
  }

  describe('five accounts on one card and a once-per-person offer', () => {
    it('redeem it exactly once, one after another (4 refused with person_cap_reached)', async () => {
      const { code } = await campaignWithCode(t, { per_person_cap: 1 });
      const card = `card_${hex(8)}`;
      const ring = Array.from({ length: 5 }, () => unique('CUS_RING_'));
      const results: LightMyRequestResponse[] = [];
      for (const customer of ring)
        results.push(await redeem(t, code, customer, { payment_fingerprint: card }));
      const [first, ...rest] = results;
      expect(first?.statusCode, first?.body).toBe(201);
      expect(rest.map(refusal)).toEqual(Array(4).fill('person_cap_reached'));
    });

    it('redeem it exactly once when all five fire at once', async () => {
      const { code } = await campaignWithCode(t, { per_person_cap: 1 });
      const card = `card_${hex(8)}`;
      const ring = Array.from({ length: 5 }, () => unique('CUS_RUSH_'));
      const results = await Promise.all(ring.map((c) => redeem(t, code, c, { payment_fingerprint: card })));
      expect(tally(results)).toEqual({ '201': 1, person_cap_reached: 4 });
    });

    it('show up as one person with the shared payment identifier in the links view', async () => {
      const card = `card_${hex(8)}`;
      const ring = Array.from({ length: 5 }, () => unique('CUS_LINK_'));
      // The ring's ordinary orders with one card (an offer without a per-person cap) link its accounts.
      const ordinary = (await campaignWithCode(t)).code;
      for (const customer of ring) {
        const r = await redeem(t, ordinary, customer, { payment_fingerprint: card });
        expect(r.statusCode, r.body).toBe(201);
      }
      const seen = await links(ring[2] as string);
      expect(seen.person_id).not.toBeNull();
      expect([...seen.customers].sort()).toEqual([...ring].sort());
      const payment = seen.shared_identifiers.filter((s) => s.type === 'payment');
      expect(payment).toHaveLength(1);
      expect(payment[0]?.identifier_hash).toBe(t.app.hasher.fromRaw('payment', card));
      expect([...(payment[0]?.customers ?? [])].sort()).toEqual([...ring].sort());

      // And the linked ring still gets a once-per-person offer once.
      const { code } = await campaignWithCode(t, { per_person_cap: 1 });
      const results: LightMyRequestResponse[] = [];
      for (const customer of ring)
        results.push(await redeem(t, code, customer, { payment_fingerprint: card }));
      expect(tally(results)).toEqual({ '201': 1, person_cap_reached: 4 });
    });
  });

  it('links two accounts through email normalization (john.doe+x@gmail.com = johndoe@googlemail.com)', async () => {
    const n = hex(3);
    const first = unique('CUS_MAIL_');
    const second = unique('CUS_MAIL_');
    const ordinary = (await campaignWithCode(t)).code;
    const a = await redeem(t, ordinary, first, { email: `john.doe${n}+x@gmail.com` });
    const b = await redeem(t, ordinary, second, { email: `johndoe${n}@googlemail.com` });
    expect([a.statusCode, b.statusCode], `${a.body} ${b.body}`).toEqual([201, 201]);
    const seen = await links(first);
    expect([...seen.customers].sort()).toEqual([first, second].sort());
    expect(seen.shared_identifiers.map((s) => s.type)).toEqual(['email']);
    expect([...(seen.shared_identifiers[0]?.customers ?? [])].sort()).toEqual([first, second].sort());

    // One person, so a once-per-person offer is refused to the second spelling.
    const { code } = await campaignWithCode(t, { per_person_cap: 1 });
    expect((await redeem(t, code, first, { email: `John.Doe${n}+x@gmail.com` })).statusCode).toBe(201);
    expect(refusal(await redeem(t, code, second, { email: `johndoe${n}@googlemail.com` }))).toBe(
      'person_cap_reached',
    );
  });

  it('a paused campaign refuses the very next redemption', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    expect((await redeem(t, code, unique('CUS_PAUSE_'))).statusCode).toBe(201);
    const paused = await t.call('POST', `/v1/campaigns/${campaignId}/pause`, {
      key: fraud.secret,
      body: { reason: 'code posted on a deal forum' },
    });
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json().status).toBe('paused');
    expect(refusal(await redeem(t, code, unique('CUS_PAUSE_')))).toBe('campaign_paused');
    const checked = await validate(t, code, unique('CUS_PAUSE_'));
    expect(checked.json()).toMatchObject({ valid: false, reason: 'campaign_paused' });
  });

  it("a revoked partner batch stops working while the campaign's other codes keep working", async () => {
    const created = await campaignWithCode(t);
    const { campaignId } = created;
    const leaky = await partnerCodes(campaignId, 'leaky', 'LK', 3);
    const good = await partnerCodes(campaignId, 'good', 'GD', 2);
    const [usedLeaky, leakyA, leakyB] = leaky as [string, string, string];
    // Redeemed before the leak was noticed: that order stands.
    expect((await redeem(t, usedLeaky, unique('CUS_PARTNER_'))).statusCode).toBe(201);

    const reason = 'leaky batch posted on a coupon site';
    const revoked = await t.call('POST', `/v1/campaigns/${campaignId}/codes/revoke`, {
      key: fraud.secret,
      body: { partner: 'leaky', reason },
    });
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(revoked.json()).toEqual({ revoked: 2 });

    expect(refusal(await redeem(t, leakyA, unique('CUS_PARTNER_')))).toBe('code_revoked');
    const checked = await validate(t, leakyB, unique('CUS_PARTNER_'));
    expect(checked.json()).toMatchObject({ valid: false, reason: 'code_revoked' });
    expect((await redeem(t, good[0] as string, unique('CUS_PARTNER_'))).statusCode).toBe(201);
    expect((await redeem(t, created.code, unique('CUS_PARTNER_'))).statusCode).toBe(201);

    const audit = await auditRows('codes.revoked_unredeemed', campaignId);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: fraud.id, reason, details: { partner: 'leaky', revoked: 2 } });
  });

  it("a partner cap stops the 3rd redemption of that partner's codes", async () => {
    const created = await campaignWithCode(t);
    const codes = await partnerCodes(created.campaignId, 'affiliate', 'AF', 3);
    const reason = 'affiliate contract: two orders';
    const capped = await t.call('PUT', `/v1/campaigns/${created.campaignId}/partners/affiliate`, {
      key: fraud.secret,
      body: { cap: 2, reason },
    });
    expect(capped.statusCode, capped.body).toBe(200);
    expect(capped.json().data).toEqual([{ partner: 'affiliate', cap: 2, used: 0, codes: 3 }]);

    const results: LightMyRequestResponse[] = [];
    for (const code of codes) results.push(await redeem(t, code, unique('CUS_CAP_')));
    expect(results.map((r) => r.statusCode)).toEqual([201, 201, 422]);
    expect(refusal(results[2] as LightMyRequestResponse)).toBe('partner_cap_reached');
    // A validation says what the redemption would say (it read valid while the redemption refused).
    const validation = await validate(t, codes[2] as string, unique('CUS_CAP_'), {});
    expect(validation.json()).toMatchObject({ valid: false, reason: 'partner_cap_reached' });
    // Codes outside the partner channel are not capped by it.
    expect((await redeem(t, created.code, unique('CUS_CAP_'))).statusCode).toBe(201);
    const audit = await auditRows('partner.capped', created.campaignId);
    expect(audit).toEqual([{ actor: fraud.id, reason, details: { partner: 'affiliate', cap: 2 } }]);
  });

  it("a partner cap holds when ten of the partner's codes are redeemed at once", async () => {
    const { campaignId } = await campaignWithCode(t);
    const codes = await partnerCodes(campaignId, 'rush', 'RU', 10);
    const capped = await t.call('PUT', `/v1/campaigns/${campaignId}/partners/rush`, {
      key: fraud.secret,
      body: { cap: 2, reason: 'burst from one affiliate' },
    });
    expect(capped.statusCode, capped.body).toBe(200);
    const results = await Promise.all(codes.map((code) => redeem(t, code, unique('CUS_RUSHP_'))));
    expect(tally(results)).toEqual({ '201': 2, partner_cap_reached: 8 });
    const partners = await t.call('GET', `/v1/campaigns/${campaignId}/partners`, { key: fraud.secret });
    expect(partners.json().data).toEqual([{ partner: 'rush', cap: 2, used: 2, codes: 10 }]);
  });

  it('a block-listed email is refused in every spelling', async () => {
    const { code } = await campaignWithCode(t);
    const n = hex(3);
    const listed = await t.call('POST', '/v1/lists', {
      key: fraud.secret,
      body: {
        list: 'block',
        type: 'email',
        value: `Jane.Roe${n}+promo@gmail.com`,
        reason: 'chargeback ring',
      },
    });
    expect(listed.statusCode, listed.body).toBe(201);
    expect(listed.json().identifier_hash).toBe(t.app.hasher.fromRaw('email', `janeroe${n}@gmail.com`));

    for (const email of [
      `Jane.Roe${n}+promo@gmail.com`,
      `janeroe${n}@googlemail.com`,
      `J.A.N.E.R.O.E${n}+second@GMAIL.COM`,
      `  jane.roe${n}@gmail.com.  `,
    ]) {
      expect(refusal(await redeem(t, code, unique('CUS_BLOCK_'), { email })), email).toBe('blocked');
      const checked = await validate(t, code, unique('CUS_BLOCK_'), { email });
      expect(checked.json(), email).toMatchObject({ valid: false, reason: 'blocked' });
    }
    // Someone else is served.
    expect((await redeem(t, code, unique('CUS_BLOCK_'), { email: `other${n}@gmail.com` })).statusCode).toBe(
      201,
    );
  });

  it('answers a list cursor beyond any entry with 400, not 500', async () => {
    const r = await t.call('GET', '/v1/lists?cursor=99999999999999999999', { key: fraud.secret });
    expect(r.statusCode, r.body).toBe(400);
  });

  it('a throttled campaign refuses the 4th redemption of a minute and serves again the next minute', async () => {
    const { campaignId, code } = await campaignWithCode(t);
    const reason = 'bot surge';
    const throttled = await t.call('POST', `/v1/campaigns/${campaignId}/throttle`, {
      key: fraud.secret,
      body: { per_minute: 3, reason },
    });
    expect(throttled.statusCode, throttled.body).toBe(200);
    expect(throttled.json().throttle_per_minute).toBe(3);

    const results: LightMyRequestResponse[] = [];
    for (let i = 0; i < 4; i++) results.push(await redeem(t, code, unique('CUS_THROTTLE_')));
    expect(results.map((r) => r.statusCode)).toEqual([201, 201, 201, 422]);
    expect(refusal(results[3] as LightMyRequestResponse)).toBe('campaign_throttled');
    expect((await validate(t, code, unique('CUS_THROTTLE_'), {})).json()).toMatchObject({
      valid: false,
      reason: 'campaign_throttled',
    });
    clock.set('2026-06-01T12:00:59.999Z');
    expect(refusal(await redeem(t, code, unique('CUS_THROTTLE_')))).toBe('campaign_throttled');

    clock.set('2026-06-01T12:01:00Z');
    expect((await redeem(t, code, unique('CUS_THROTTLE_'))).statusCode).toBe(201);
    const audit = await auditRows('campaign.throttled', campaignId);
    expect(audit).toEqual([{ actor: fraud.id, reason, details: { per_minute: 3 } }]);
  });

  it('a storefront gets one uniform answer for unknown, expired, used-up, revoked and not-yours codes', async () => {
    const { campaignId, code: usedUp } = await campaignWithCode(t, {}, { max_uses: 1 });
    expect((await redeem(t, usedUp, unique('CUS_EARLIER_'))).statusCode).toBe(201);
    const addCode = async (body: Record<string, unknown>) => {
      const text = unique('UNI');
      const r = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        key: t.keys.marketing,
        body: { code: text, ...body },
      });
      expect(r.statusCode, r.body).toBe(201);
      return text;
    };
    const revoked = await addCode({});
    const r = await t.call('POST', `/v1/codes/${revoked}/revoke`, {
      key: t.keys.marketing,
      body: { reason: 'leaked' },
    });
    expect(r.statusCode, r.body).toBe(200);
    const notYours = await addCode({ customer_id: unique('CUS_OWNER_'), max_uses: 1 });
    const expired = (
      await campaignWithCode(t, { starts_at: '2020-01-01T00:00:00Z', ends_at: '2021-01-01T00:00:00Z' })
    ).code;
    const cases = {
      code_not_found: randomCode(),
      campaign_expired: expired,
      code_used_up: usedUp,
      code_revoked: revoked,
      code_bound_to_other_customer: notYours,
    };

    const shopper = unique('CUS_SHOP_');
    const token = await customerToken(t, shopper);
    const storefront: LightMyRequestResponse[] = [];
    for (const code of Object.values(cases)) {
      storefront.push(await storefrontValidate(t, token, code, shopper, '198.51.100.23'));
    }
    for (const answer of storefront) {
      expect(answer.statusCode, answer.body).toBe(200);
      expect(answer.json()).toEqual({ valid: false, message: REFUSAL_MESSAGE });
      expect(answer.json()).not.toHaveProperty('reason');
      expect(answer.headers['content-type']).toBe(storefront[0]?.headers['content-type']);
    }
    expect(new Set(storefront.map((a) => a.body)).size).toBe(1);

    // A trusted checkout key is told each reason.
    const buyer = unique('CUS_TRUSTED_');
    for (const [reason, code] of Object.entries(cases)) {
      const answer = await validate(t, code, buyer);
      expect(answer.statusCode, answer.body).toBe(200);
      expect(answer.json(), code).toEqual({ valid: false, reason, message: REFUSAL_MESSAGE });
    }
  });
});
