/**
 * The audit trail through the HTTP API: every kind of change by a key leaves one entry with the actor,
 * the time, the reason and the change itself, written with the change (a refused change leaves none);
 * GET /v1/audit filters by actor, resource, action prefix and time and pages newest first; and no one —
 * no route, no SQL statement — can rewrite or erase an entry.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { campaignBody, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const START = '2026-06-01T12:00:00Z';

interface Entry {
  id: number;
  actor: string;
  action: string;
  resource: string;
  reason: string | null;
  details: Record<string, unknown>;
  created_at: string;
}

describe.each(backends.map((b) => [b.name, b] as const))('audit trail on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date(START));
  let fraud = '';
  const ids = { admin: '', marketing: '', fraud: '' };

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    fraud = (await t.app.apiKeys.create('analyst', ['fraud'], 'test')).secret;
    ids.admin = (await t.app.apiKeys.verify(t.keys.admin))?.id ?? '';
    ids.marketing = (await t.app.apiKeys.verify(t.keys.marketing))?.id ?? '';
    ids.fraud = (await t.app.apiKeys.verify(fraud))?.id ?? '';
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(START));

  async function audit(query: string, key = fraud): Promise<{ data: Entry[]; next_cursor: number | null }> {
    const res = await t.call('GET', `/v1/audit?${query}`, { key });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }
  const trail = async (resource: string) => (await audit(`resource=${resource}&limit=200`)).data;

  async function ok(method: 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, key: string, body?: unknown) {
    const res = await t.call(method, url, { key, body });
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.body ? res.json() : null;
  }

  it('records campaign creation, edits with each changed field, status changes and throttles', async () => {
    const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody({ redemption_cap: 10 }));
    clock.advance(1_000);
    await ok('PATCH', `/v1/campaigns/${c.id}`, t.keys.marketing, { name: 'Winter', redemption_cap: 20 });
    await ok('POST', `/v1/campaigns/${c.id}/pause`, fraud, { reason: 'spike' });
    await ok('POST', `/v1/campaigns/${c.id}/throttle`, fraud, { per_minute: 5, reason: 'slow it down' });
    await ok('PATCH', `/v1/campaigns/${c.id}`, t.keys.marketing, { status: 'ended' });

    const entries = await trail(c.id);
    expect(entries.map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['campaign.ended', ids.marketing, null],
      ['campaign.throttled', ids.fraud, 'slow it down'],
      ['campaign.paused', ids.fraud, 'spike'],
      ['campaign.updated', ids.marketing, null],
      ['campaign.created', ids.marketing, null],
    ]);
    const byAction = Object.fromEntries(entries.map((e) => [e.action, e]));
    expect(byAction['campaign.created']?.details).toMatchObject({
      campaign: { id: c.id, name: 'Summer sale', redemptionCap: 10 },
    });
    expect(byAction['campaign.created']?.created_at).toBe(new Date(START).toISOString());
    expect(byAction['campaign.updated']?.details).toEqual({
      changes: { name: { from: 'Summer sale', to: 'Winter' }, redemptionCap: { from: 10, to: 20 } },
      version: { from: 1, to: 2 },
    });
    expect(byAction['campaign.updated']?.created_at).toBe('2026-06-01T12:00:01.000Z');
    expect(byAction['campaign.paused']?.details).toEqual({ from: 'active' });
    expect(byAction['campaign.throttled']?.details).toEqual({ per_minute: 5 });
  });

  it('records code creation, import, generation, revocation and bulk revocation', async () => {
    const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody());
    const text = unique('AUD');
    const code = await ok('POST', `/v1/campaigns/${c.id}/codes`, t.keys.marketing, { code: text });
    await ok('POST', `/v1/campaigns/${c.id}/codes`, t.keys.marketing, {
      codes: [{ code: unique('IMP') }, { code: unique('IMP') }],
    });
    const batch = await ok('POST', `/v1/campaigns/${c.id}/codes`, t.keys.marketing, {
      generate: { count: 3, prefix: unique('G').slice(0, 6), partner: 'affiliate' },
    });
    await ok('POST', `/v1/codes/${text}/revoke`, t.keys.marketing, { reason: 'leaked' });
    await ok('POST', `/v1/campaigns/${c.id}/codes/revoke`, fraud, {
      partner: 'affiliate',
      reason: 'leaked batch',
    });

    expect((await trail(code.id)).map((e) => [e.action, e.actor, e.reason, e.details])).toEqual([
      ['code.revoked', ids.marketing, 'leaked', { campaign_id: c.id, code: text }],
      [
        'code.created',
        ids.marketing,
        null,
        {
          campaign_id: c.id,
          code: text,
          kind: 'public',
          max_uses: null,
          customer_id: null,
          partner: null,
          status: 'active',
        },
      ],
    ]);
    expect((await trail(batch.batch_id)).map((e) => [e.action, e.details])).toEqual([
      [
        'code.batch_generated',
        expect.objectContaining({ campaign_id: c.id, count: 3, max_uses: 1, partner: 'affiliate' }),
      ],
    ]);
    expect((await trail(c.id)).map((e) => [e.action, e.details])).toEqual([
      ['codes.revoked_unredeemed', { partner: 'affiliate', revoked: 3 }],
      ['code.imported', { campaign_id: c.id, count: 2 }],
      ['campaign.created', expect.anything()],
    ]);
  });

  it('keeps a unique code’s text (a bearer secret) out of the trail', async () => {
    const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody());
    const text = unique('ONCE');
    const code = await ok('POST', `/v1/campaigns/${c.id}/codes`, t.keys.marketing, {
      code: text,
      max_uses: 1,
    });
    const [created] = await trail(code.id);
    expect(created?.details).toMatchObject({ kind: 'unique', max_uses: 1 });
    expect(JSON.stringify(created)).not.toContain(text);
  });

  it('records rules, list entries and partner caps with the change itself', async () => {
    const rule = await ok('POST', '/v1/rules', fraud, {
      name: 'audit me',
      expression: 'features.linked_accounts >= 50',
      action: 'review',
      reason: 'many accounts',
      mode: 'shadow',
    });
    await ok('PATCH', `/v1/rules/${rule.id}`, fraud, { mode: 'enforce' });
    await ok('DELETE', `/v1/rules/${rule.id}`, fraud);
    const ruleTrail = await trail(rule.id);
    expect(ruleTrail.map((e) => [e.action, e.actor])).toEqual([
      ['rule.deleted', ids.fraud],
      ['rule.updated', ids.fraud],
      ['rule.created', ids.fraud],
    ]);
    expect(ruleTrail[1]?.details).toMatchObject({ before: { mode: 'shadow' }, after: { mode: 'enforce' } });
    expect(ruleTrail[0]?.details).toMatchObject({ before: { id: rule.id, mode: 'enforce' } });

    const entry = await ok('POST', '/v1/lists', fraud, {
      list: 'block',
      type: 'email',
      value: `${unique('a').toLowerCase()}@example.com`,
      reason: 'card testing',
    });
    await ok('POST', `/v1/lists/${entry.id}/remove`, fraud, { reason: 'false positive' });
    expect((await trail(String(entry.id))).map((e) => [e.action, e.reason, e.details])).toEqual([
      ['list.block.remove', 'false positive', { type: 'email', identifier_hash: entry.identifier_hash }],
      [
        'list.block.add',
        'card testing',
        { type: 'email', identifier_hash: entry.identifier_hash, expires_at: null },
      ],
    ]);

    const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody());
    await ok('PUT', `/v1/campaigns/${c.id}/partners/affiliate`, fraud, { cap: 2, reason: 'new channel' });
    const [capped] = (await audit(`resource=${c.id}&action=partner.`)).data;
    expect(capped).toMatchObject({
      actor: ids.fraud,
      reason: 'new channel',
      details: { partner: 'affiliate', cap: 2 },
    });
  });

  it('records API keys created and revoked (never their secret), by the admin key that did it', async () => {
    const created = await t.call('POST', '/v1/api-keys', {
      key: t.keys.admin,
      body: { name: 'partner feed', scopes: ['checkout'] },
    });
    expect(created.statusCode, created.body).toBe(201);
    const key = created.json();
    await ok('POST', `/v1/api-keys/${key.id}/revoke`, t.keys.admin, { reason: 'contract ended' });
    // A repeated revocation changes nothing and records nothing.
    await ok('POST', `/v1/api-keys/${key.id}/revoke`, t.keys.admin);

    const entries = await trail(key.id);
    expect(entries.map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['api_key.revoked', ids.admin, 'contract ended'],
      ['api_key.created', ids.admin, null],
    ]);
    expect(entries[1]?.details).toEqual({
      name: 'partner feed',
      scopes: ['checkout'],
      hint: key.hint.slice(1),
    });
    expect(JSON.stringify(entries)).not.toContain(key.secret);
  });

  it('writes nothing for a change that was refused', async () => {
    const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody());
    const taken = unique('TAKEN');
    await ok('POST', `/v1/campaigns/${c.id}/codes`, t.keys.marketing, { code: taken });
    const before = (await trail(c.id)).length;
    const refused = await t.call('POST', `/v1/campaigns/${c.id}/codes`, {
      key: t.keys.marketing,
      body: { codes: [{ code: unique('NEW') }, { code: taken }] },
    });
    expect(refused.statusCode).toBe(409);
    const badEdit = await t.call('PATCH', `/v1/campaigns/${c.id}`, {
      key: t.keys.marketing,
      body: { name: 'never', status: 'draft' },
    });
    expect(badEdit.statusCode).toBe(409);
    expect(await trail(c.id)).toHaveLength(before);
  });

  describe('GET /v1/audit', () => {
    it('filters by actor, resource, action prefix and a [from, to) time range, newest first', async () => {
      const window = '2030-01-01T00:00:00.000Z';
      clock.set(window);
      const a = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody());
      clock.advance(60_000);
      await ok('POST', `/v1/campaigns/${a.id}/pause`, fraud, { reason: 'check' });
      clock.advance(60_000);
      await ok('POST', `/v1/campaigns/${a.id}/resume`, t.keys.admin);

      const inWindow = (await audit(`from=${window}&to=2030-01-01T00:03:00Z`)).data;
      expect(inWindow.map((e) => e.action)).toEqual([
        'campaign.active',
        'campaign.paused',
        'campaign.created',
      ]);
      const middle = (await audit(`from=2030-01-01T00:01:00Z&to=2030-01-01T00:02:00Z`)).data;
      expect(middle.map((e) => e.action)).toEqual(['campaign.paused']);

      const byActor = (await audit(`actor=${ids.fraud}&resource=${a.id}`)).data;
      expect(byActor.map((e) => e.action)).toEqual(['campaign.paused']);
      const prefix = (await audit(`resource=${a.id}&action=campaign.`)).data;
      expect(prefix).toHaveLength(3);
      expect((await audit(`resource=${a.id}&action=campaign.p`)).data.map((e) => e.action)).toEqual([
        'campaign.paused',
      ]);
      // `_` is a character here, not a LIKE wildcard.
      expect((await audit(`resource=${a.id}&action=campaign_`)).data).toEqual([]);
      expect((await audit('actor=key_nobody')).data).toEqual([]);
    });

    it('pages newest first with a cursor, without gaps or repeats', async () => {
      const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody({ redemption_cap: 1 }));
      for (let cap = 2; cap <= 6; cap++) {
        await ok('PATCH', `/v1/campaigns/${c.id}`, t.keys.marketing, { redemption_cap: cap });
      }
      const all = (await audit(`resource=${c.id}`)).data;
      expect(all).toHaveLength(6);
      const seen: number[] = [];
      let cursor: number | null = null;
      do {
        const pageOf: { data: Entry[]; next_cursor: number | null } = await audit(
          `resource=${c.id}&limit=4${cursor === null ? '' : `&cursor=${cursor}`}`,
        );
        seen.push(...pageOf.data.map((e) => e.id));
        cursor = pageOf.next_cursor;
      } while (cursor !== null);
      expect(seen).toEqual(all.map((e) => e.id));
      expect([...seen].sort((x, y) => y - x)).toEqual(seen);
    });

    it('is read by fraud and admin keys; marketing and checkout keys are refused; bad filters are a 400', async () => {
      expect((await t.call('GET', '/v1/audit', { key: t.keys.admin })).statusCode).toBe(200);
      expect((await t.call('GET', '/v1/audit', { key: t.keys.marketing })).statusCode).toBe(403);
      expect((await t.call('GET', '/v1/audit', { key: t.keys.checkout })).statusCode).toBe(403);
      expect((await t.call('GET', '/v1/audit', { key: null })).statusCode).toBe(401);
      for (const bad of ['action=CAMPAIGN%25', 'from=yesterday', 'cursor=0', 'limit=201', 'extra=1']) {
        const res = await t.call('GET', `/v1/audit?${bad}`, { key: fraud });
        expect(res.statusCode, bad).toBe(400);
        expect(res.json().code).toBe('validation_failed');
      }
    });
  });

  describe('immutability', () => {
    it('no route edits or deletes an entry', async () => {
      for (const method of ['PUT', 'PATCH', 'DELETE', 'POST'] as const) {
        expect((await t.call(method, '/v1/audit', { key: t.keys.admin, body: {} })).statusCode).toBe(404);
        expect((await t.call(method, '/v1/audit/1', { key: t.keys.admin, body: {} })).statusCode).toBe(404);
      }
    });

    it('the database refuses to update, delete or truncate audit rows, even for the service’s own role', async () => {
      const c = await ok('POST', '/v1/campaigns', t.keys.marketing, campaignBody());
      const [entry] = await trail(c.id);
      const attempts = [
        sql`UPDATE audit_log SET actor = 'someone else' WHERE id = ${entry?.id}`,
        sql`DELETE FROM audit_log WHERE id = ${entry?.id}`,
        sql`TRUNCATE audit_log`,
      ];
      for (const statement of attempts) {
        await expect(statement.execute(t.app.db)).rejects.toThrow(/audit_log rows are immutable/);
      }
      expect(await trail(c.id)).toEqual([entry]);
    });
  });
});
