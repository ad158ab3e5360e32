/**
 * Behaviours fixed after the first review, each pinned where a user would notice it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { ConfigError, loadConfig, trustProxySetting } from '../../src/config.js';
import {
  campaignBody,
  campaignWithCode,
  checkoutBody,
  silentLogger,
  startTestApp,
  type TestApp,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

describe('configuration', () => {
  it('never echoes a secret or a URL in its error', () => {
    const attempt = () =>
      loadConfig({ PROMOGUARD_SECRET: 'hunter2-short-secret', DATABASE_URL: 'mysql://u:pw@h/db' });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toContain('PROMOGUARD_SECRET');
      expect(message).toContain('DATABASE_URL');
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('pw@');
    }
  });

  it('trusts only the given proxies, never every hop', () => {
    expect(trustProxySetting('false')).toBe(false);
    const hops = trustProxySetting('1') as (address: string, hop: number) => boolean;
    expect([hops('10.0.0.1', 0), hops('6.6.6.6', 1)]).toEqual([true, false]);
    expect(trustProxySetting('10.0.0.0/8, 192.168.1.1')).toEqual(['10.0.0.0/8', '192.168.1.1']);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(ConfigError);
  });

  it('names both variables when the first lock is longer than the longest', () => {
    expect(() => loadConfig({ LOCKOUT_BASE_SECONDS: '600', LOCKOUT_MAX_SECONDS: '60' })).toThrow(
      /LOCKOUT_BASE_SECONDS=600: must not exceed LOCKOUT_MAX_SECONDS=60/,
    );
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('review fixes on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend, {
      env: { RATE_LIMIT_PER_MINUTE: '60', LOCKOUT_AFTER_FAILURES: '3' },
    });
  });
  afterAll(async () => t?.close());

  it('refuses to spend points on a coupon of a paused program campaign, and changes nothing', async () => {
    const program = (
      await t.call('POST', '/v1/points-programs', { body: { name: 'P', currency: 'JPY' } })
    ).json();
    const customer = unique('cus_paused_');
    await t.call('POST', `/v1/customers/${customer}/points`, {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('earn-') },
      body: { type: 'credit', points: 1000, reason: 'order' },
    });
    await t.call('POST', `/v1/campaigns/${program.campaign_id}/pause`, { body: { reason: 'test' } });
    const res = await t.call('POST', `/v1/customers/${customer}/conversions`, {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('conv-') },
      body: { program_id: program.id, points: 500 },
    });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json().code).toBe('points_program_inactive');
    const points = (await t.call('GET', `/v1/customers/${customer}/points`, { key: t.keys.checkout })).json();
    expect(points).toMatchObject({ balance: 1000, converted_today: 0 });
  });

  it('answers an oversized cursor with 400, not 500', async () => {
    for (const url of ['/v1/customers/cus_1/points?cursor=1e21', '/v1/lists?cursor=99999999999999999999']) {
      const res = await t.call('GET', url);
      expect(res.statusCode, `${url} ${res.body}`).toBe(400);
    }
  });

  it('returns the first redemption to a repeat even after the caller was locked out', async () => {
    const { code } = await campaignWithCode(t);
    const customer = unique('cus_replay_');
    const key = unique('order-');
    const ip = '198.51.100.77';
    const body = checkoutBody(code, { customer: { id: customer }, context: { ip } });
    const first = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': key },
      body,
    });
    expect(first.statusCode, first.body).toBe(201);
    for (let i = 0; i < 3; i++) {
      await t.call('POST', '/v1/validations', {
        key: t.keys.checkout,
        body: checkoutBody(unique('NOPE'), { customer: { id: customer }, context: { ip } }),
      });
    }
    const locked = await t.call('POST', '/v1/validations', {
      key: t.keys.checkout,
      body: checkoutBody(code, { customer: { id: customer }, context: { ip } }),
    });
    expect(locked.statusCode).toBe(429);
    const repeat = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': key },
      body,
    });
    expect(repeat.statusCode, repeat.body).toBe(201);
    expect(repeat.headers['idempotent-replayed']).toBe('true');
    expect(repeat.json().id).toBe(first.json().id);
  });

  it('keeps loyalty coupons working next to a generated batch with no prefix', async () => {
    const created = await t.call('POST', '/v1/campaigns', { body: campaignBody() });
    const batch = await t.call('POST', `/v1/campaigns/${created.json().id}/codes`, {
      body: { generate: { count: 1, random_length: 13 } },
    });
    expect(batch.statusCode, batch.body).toBe(201);
    const program = (
      await t.call('POST', '/v1/points-programs', { body: { name: 'Q', currency: 'JPY' } })
    ).json();
    const customer = 'cus_70934';
    await t.call('POST', `/v1/customers/${customer}/points`, {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('earn-') },
      body: { type: 'credit', points: 5000, reason: 'order' },
    });
    for (let i = 0; i < 5; i++) {
      const res = await t.call('POST', `/v1/customers/${customer}/conversions`, {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('conv-') },
        body: { program_id: program.id, points: 500 },
      });
      expect(res.statusCode, res.body).toBe(201);
    }
  });
});

describe('the server secret', () => {
  it('refuses to start on a database first used with another secret', async () => {
    const backend = backends[0];
    if (!backend) throw new Error('no backend');
    const database = await backend.open();
    const config = (secret: string) => loadConfig({ PROMOGUARD_SECRET: secret, LOG_LEVEL: 'silent' });
    const keep = { ...database, close: async () => {} };
    const first = await createApp({
      config: config('a'.repeat(40)),
      logger: silentLogger,
      database: keep as never,
      relay: false,
    });
    await first.close();
    await expect(
      createApp({
        config: config('b'.repeat(40)),
        logger: silentLogger,
        database: keep as never,
        relay: false,
      }),
    ).rejects.toThrow(/differs from the secret/);
    await database.close();
  });
});
