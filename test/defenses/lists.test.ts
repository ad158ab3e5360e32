/**
 * Block and allow lists through the real app on every database: entries that expire or are removed
 * stop counting (at once on the node that removed them, within the lists' refresh on the others), and
 * `ip` entries that name a CIDR range, IPv4 or IPv6, judge every address inside it and none outside.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inRange, parseCidr, parseIpAddress } from '../../src/domain/identity/index.js';
import { matchingEntries } from '../../src/store/lists.js';
import { sharedDatabase } from '../risk/helpers.js';
import {
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const NOW = '2026-06-01T12:00:05Z';
const HOUR = 3_600_000;
/** The production attempt limits: an address or a customer locks after 10 failures. */
const LIMITS = {
  RISK_DEFAULT_PACK: 'off',
  RATE_LIMIT_PER_MINUTE: '60',
  LOCKOUT_AFTER_FAILURES: '10',
  RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '60',
  LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '10',
  LOCKOUT_BASE_SECONDS: '60',
};

async function fraudKey(t: TestApp): Promise<string> {
  const r = await t.call('POST', '/v1/api-keys', { body: { name: 'fraud analyst', scopes: ['fraud'] } });
  expect(r.statusCode, r.body).toBe(201);
  return r.json().secret as string;
}

function validate(t: TestApp, code: string, ip: string, customerId = unique('CUS_LIST_')) {
  return t.call('POST', '/v1/validations', {
    key: t.keys.checkout,
    body: checkoutBody(code, { customer: { id: customerId }, context: { ip } }),
  });
}

function redeem(t: TestApp, code: string, ip: string) {
  return t.call('POST', '/v1/redemptions', {
    key: t.keys.checkout,
    body: checkoutBody(code, {
      customer: { id: unique('CUS_LIST_') },
      order_id: unique('ORD'),
      context: { ip },
    }),
    headers: { 'idempotency-key': unique('IDEM-') },
  });
}

/** Whether a validation from `ip` is refused as blocked (a valid answer otherwise). */
async function isBlocked(t: TestApp, code: string, ip: string): Promise<boolean> {
  const r = await validate(t, code, ip);
  expect(r.statusCode, r.body).toBe(200);
  const body = r.json() as { valid: boolean; reason?: string };
  if (body.valid) return false;
  expect(body.reason, ip).toBe('blocked');
  return true;
}

describe.each(backends.map((b) => [b.name, b] as const))('block and allow lists on %s', (_name, backend) => {
  const clock = new TestClock(new Date(NOW));
  let t: TestApp;
  let fraud: string;
  let code: string;

  beforeAll(async () => {
    t = await startTestApp(backend, { clock, env: LIMITS });
    fraud = await fraudKey(t);
    code = (await campaignWithCode(t)).code;
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(NOW));

  async function list(body: Record<string, unknown>): Promise<LightMyRequestResponse> {
    return t.call('POST', '/v1/lists', { key: fraud, body: { reason: 'test', ...body } });
  }

  async function listed(body: Record<string, unknown>) {
    const r = await list(body);
    expect(r.statusCode, r.body).toBe(201);
    return r.json() as { id: number; identifier_hash: string; network: string | null };
  }

  async function remove(id: number) {
    const r = await t.call('POST', `/v1/lists/${id}/remove`, { key: fraud, body: { reason: 'cleared' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().removed_at).not.toBeNull();
  }

  it('an IPv4 /24 block refuses every address inside it and none outside', async () => {
    const entry = await listed({ list: 'block', type: 'ip', value: '203.0.113.0/24' });
    expect(entry.network).toBe('203.0.113.0/24');
    for (const ip of ['203.0.113.0', '203.0.113.77', '203.0.113.255', '::ffff:203.0.113.9']) {
      expect(await isBlocked(t, code, ip), ip).toBe(true);
    }
    const refused = await redeem(t, code, '203.0.113.8');
    expect(refused.statusCode, refused.body).toBe(422);
    expect(refused.json().reason).toBe('blocked');
    for (const ip of ['203.0.112.255', '203.0.114.0', '2001:db8::1']) {
      expect(await isBlocked(t, code, ip), ip).toBe(false);
    }
    expect((await redeem(t, code, '203.0.114.1')).statusCode).toBe(201);
    await remove(entry.id);
  });

  it('an IPv6 /48 block refuses every address inside it and none outside', async () => {
    const entry = await listed({ list: 'block', type: 'ip', value: '2001:DB8:AA::/48' });
    expect(entry.network).toBe('2001:db8:aa::/48');
    for (const ip of [
      '2001:db8:aa::1',
      '2001:db8:aa:ffff:1:2:3:4',
      '2001:db8:aa:1::%eth0',
      '2001:db8:aa:7::/64',
    ]) {
      expect(await isBlocked(t, code, ip), ip).toBe(true);
    }
    for (const ip of ['2001:db8:ab::1', '2001:db8:a9:ffff::1', '203.0.113.1']) {
      expect(await isBlocked(t, code, ip), ip).toBe(false);
    }
    await remove(entry.id);
  });

  it('a removed range stops blocking at once; removing it again is harmless', async () => {
    const entry = await listed({ list: 'block', type: 'ip', value: '198.51.100.0/25' });
    expect(await isBlocked(t, code, '198.51.100.1')).toBe(true);
    await remove(entry.id);
    expect(await isBlocked(t, code, '198.51.100.1')).toBe(false);
    await remove(entry.id);
    const listedNow = await t.call('GET', '/v1/lists?type=ip', { key: fraud });
    expect((listedNow.json().data as { id: number }[]).map((e) => e.id)).not.toContain(entry.id);
  });

  it('a removed address or email stops blocking at once', async () => {
    const ip = '192.0.2.44';
    const byIp = await listed({ list: 'block', type: 'ip', value: ip });
    const email = `${unique('gone').toLowerCase()}@example.com`;
    const byEmail = await listed({ list: 'block', type: 'email', value: email });
    expect(await isBlocked(t, code, ip)).toBe(true);
    const withEmail = () =>
      t.call('POST', '/v1/validations', {
        key: t.keys.checkout,
        body: checkoutBody(code, { customer: { id: unique('CUS_LIST_') }, context: { email } }),
      });
    expect((await withEmail()).json()).toMatchObject({ valid: false, reason: 'blocked' });
    await remove(byIp.id);
    await remove(byEmail.id);
    expect(await isBlocked(t, code, ip)).toBe(false);
    expect((await withEmail()).json()).toMatchObject({ valid: true });
  });

  it('a block entry or range stops blocking once its expiry has passed', async () => {
    const expiresAt = new Date(clock.now().getTime() + HOUR).toISOString();
    await listed({ list: 'block', type: 'ip', value: '192.0.2.99', expires_at: expiresAt });
    await listed({ list: 'block', type: 'ip', value: '2001:db8:ee::/48', expires_at: expiresAt });
    expect(await isBlocked(t, code, '192.0.2.99')).toBe(true);
    expect(await isBlocked(t, code, '2001:db8:ee:5::1')).toBe(true);
    clock.advance(HOUR - 1_000);
    expect(await isBlocked(t, code, '2001:db8:ee:5::1')).toBe(true);
    clock.advance(2_000);
    expect(await isBlocked(t, code, '192.0.2.99')).toBe(false);
    expect(await isBlocked(t, code, '2001:db8:ee:5::1')).toBe(false);
  });

  it('an expiry in the past is refused', async () => {
    const r = await list({
      list: 'block',
      type: 'ip',
      value: '192.0.2.0/24',
      expires_at: new Date(clock.now().getTime() - 1_000).toISOString(),
    });
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json().code).toBe('validation_failed');
  });

  /** Failed validations (unknown codes) from `ip`, one customer each: the answers' status codes. */
  async function failures(ip: string, count: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) statuses.push((await validate(t, `NOPE${unique('X')}`, ip)).statusCode);
    return statuses;
  }

  it('an allowed range exempts its addresses from the attempt lockout as an allowed address does', async () => {
    // Outside any allow entry, the address locks after its 10th failure.
    expect((await failures('192.0.2.200', 11)).slice(9)).toEqual([200, 429]);
    await listed({ list: 'allow', type: 'ip', value: '100.64.0.0/16' });
    await listed({ list: 'allow', type: 'ip', value: '192.0.2.201' });
    expect(await failures('100.64.3.3', 15)).toEqual(new Array(15).fill(200));
    expect(await failures('192.0.2.201', 15)).toEqual(new Array(15).fill(200));
    // Just outside the range, the lockout holds.
    expect((await failures('100.65.0.1', 11)).slice(9)).toEqual([200, 429]);
  });

  it('an allow range that has expired or been removed no longer exempts', async () => {
    const expiresAt = new Date(clock.now().getTime() + HOUR).toISOString();
    await listed({ list: 'allow', type: 'ip', value: '100.80.0.0/16', expires_at: expiresAt });
    const removed = await listed({ list: 'allow', type: 'ip', value: '100.81.0.0/16' });
    expect(await failures('100.80.0.1', 12)).toEqual(new Array(12).fill(200));
    expect(await failures('100.81.0.1', 12)).toEqual(new Array(12).fill(200));
    await remove(removed.id);
    clock.advance(HOUR + 1_000);
    // With no allow entry in force, each address locks after its 10th failure again.
    expect((await failures('100.80.0.2', 11)).slice(9)).toEqual([200, 429]);
    expect((await failures('100.81.0.2', 11)).slice(9)).toEqual([200, 429]);
  });

  it('a block range wins over an allowed address inside it', async () => {
    const allow = await listed({ list: 'allow', type: 'ip', value: '198.18.0.5' });
    const block = await listed({ list: 'block', type: 'ip', value: '198.18.0.0/15' });
    expect(await isBlocked(t, code, '198.18.0.5')).toBe(true);
    await remove(block.id);
    await remove(allow.id);
  });

  it('a /32 or IPv6 /64 is the single-address entry; a range added twice is one entry', async () => {
    const single = await listed({ list: 'block', type: 'ip', value: '192.0.2.7/32' });
    expect(single.network).toBeNull();
    expect(single.identifier_hash).toBe(t.app.hasher.fromRaw('ip', '192.0.2.7'));
    const slash64 = await listed({ list: 'block', type: 'ip', value: '2001:db8:1:2::/64' });
    expect(slash64.network).toBeNull();
    expect(slash64.identifier_hash).toBe(t.app.hasher.fromRaw('ip', '2001:db8:1:2::99'));
    expect(await isBlocked(t, code, '2001:db8:1:2:abcd::1')).toBe(true);
    const first = await listed({ list: 'block', type: 'ip', value: '192.0.2.128/26' });
    const again = await listed({ list: 'block', type: 'ip', value: '192.0.2.128/26', reason: 'again' });
    expect(again.id).toBe(first.id);
    expect(first.identifier_hash).not.toBe(t.app.hasher.fromRaw('ip', '192.0.2.128'));
    for (const e of [single, slash64, first]) await remove(e.id);
  });

  it.each([
    ['203.0.113.7/24', 'host bits set; the network is 203.0.113.0/24'],
    ['2001:db8::1/48', 'host bits set; the network is 2001:db8::/48'],
    ['2001:db8:0:1:5::/64', 'host bits set; the network is 2001:db8:0:1::/64'],
    ['203.0.113.0/33', 'prefix length above 32'],
    ['2001:db8::/129', 'prefix length above 128'],
    ['2001:db8::/96', 'narrower than /64'],
    ['0.0.0.0/0', 'every address'],
    ['203.0.113.0/', 'is not a CIDR range'],
    ['203.0.113.0/024', 'is not a CIDR range'],
    ['203.0.113/24', 'not an IPv4 address'],
    ['2001:db8:::/32', 'not an IPv6 address'],
    ['203.0.113.0/24/8', 'is not a CIDR range'],
  ])('refuses %s with validation_failed naming the value', async (value, message) => {
    const r = await list({ list: 'block', type: 'ip', value });
    expect(r.statusCode, r.body).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = r.json() as { code: string; errors: { field: string; message: string }[] };
    expect(body.code).toBe('validation_failed');
    expect(body.errors[0]?.field).toBe('body/value');
    expect(body.errors[0]?.message).toContain(message);
  });

  it('the lists asked directly match an address against stored ranges', async () => {
    // The query a node uses when the lists are too many to keep in memory.
    const entry = await listed({ list: 'block', type: 'ip', value: '2001:db8:77::/48' });
    const now = clock.now();
    const inside = await matchingEntries(t.app.db, [], now, '2001:db8:77:1::1');
    expect(inside.map((e) => e.id)).toEqual([entry.id]);
    expect(await matchingEntries(t.app.db, [], now, '2001:db8:78::1')).toEqual([]);
    expect(await matchingEntries(t.app.db, [], now, '10.0.0.1')).toEqual([]);
    await remove(entry.id);
    expect(await matchingEntries(t.app.db, [], now, '2001:db8:77:1::1')).toEqual([]);
  });
});

describe('range arithmetic', () => {
  it('tests addresses against ranges at the prefix boundary', () => {
    const range = (text: string) => {
      const r = parseCidr(text);
      if (!('range' in r)) throw new Error(r.error);
      return r.range;
    };
    const ip = (text: string) => {
      const a = parseIpAddress(text);
      if (a === null) throw new Error(text);
      return a;
    };
    expect(inRange(ip('10.255.255.255'), range('10.0.0.0/8'))).toBe(true);
    expect(inRange(ip('11.0.0.0'), range('10.0.0.0/8'))).toBe(false);
    expect(inRange(ip('9.255.255.255'), range('10.0.0.0/8'))).toBe(false);
    expect(inRange(ip('128.0.0.1'), range('128.0.0.0/1'))).toBe(true);
    expect(inRange(ip('127.255.255.255'), range('128.0.0.0/1'))).toBe(false);
    expect(inRange(ip('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'), range('2001:db8::/32'))).toBe(true);
    expect(inRange(ip('2001:db9::'), range('2001:db8::/32'))).toBe(false);
    expect(inRange(ip('::ffff:10.1.2.3'), range('10.0.0.0/8'))).toBe(true);
    expect(range('2001:0DB8:0000:0000:0001::/80').text).toBe('2001:db8:0:0:1::/80');
    expect(range('2001:db8:0:0:1:0:0:0/80').text).toBe('2001:db8:0:0:1::/80');
    expect(range('0:0:1:0:0:0:0:0/48').text).toBe('0:0:1::/48');
  });
});

/**
 * Two nodes on one database (PostgreSQL when configured; PGlite shared in one process otherwise): a
 * removal on one node is applied there at once and on the other within its refresh (a second).
 */
const postgres = backends.filter((b) => b.name === 'postgres');
const nodeBackends = postgres.length > 0 ? postgres : backends;

describe.each(nodeBackends.map((b) => [b.name, b] as const))('lists on two nodes on %s', (_name, backend) => {
  it('a range removed on node A stops blocking on A at once and on B within seconds', async () => {
    const clock = new TestClock(new Date(NOW));
    const database = await sharedDatabase(backend);
    const nodes: TestApp[] = [];
    try {
      nodes.push(await startTestApp(database.node, { clock }));
      nodes.push(await startTestApp(database.node, { clock }));
      const [a, b] = nodes as [TestApp, TestApp];
      const fraud = await fraudKey(a);
      const { code } = await campaignWithCode(a);
      const added = await a.call('POST', '/v1/lists', {
        key: fraud,
        body: { list: 'block', type: 'ip', value: '203.0.113.0/24', reason: 'botnet' },
      });
      expect(added.statusCode, added.body).toBe(201);
      const deadline = Date.now() + 6_000;
      while (!(await isBlocked(b, code, '203.0.113.5')) && Date.now() < deadline) await sleep(200);
      expect(await isBlocked(b, code, '203.0.113.5')).toBe(true);

      const removed = await a.call('POST', `/v1/lists/${added.json().id}/remove`, { key: fraud, body: {} });
      expect(removed.statusCode, removed.body).toBe(200);
      expect(await isBlocked(a, code, '203.0.113.5')).toBe(false);
      const until = Date.now() + 6_000;
      while ((await isBlocked(b, code, '203.0.113.5')) && Date.now() < until) await sleep(200);
      expect(await isBlocked(b, code, '203.0.113.5')).toBe(false);
    } finally {
      for (const n of nodes) await n.close();
      await database.close();
    }
  }, 30_000);
});
