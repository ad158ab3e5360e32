/**
 * Webhooks end to end, on every backend, against real HTTP receivers on loopback: endpoints and their
 * scope, signed deliveries verified by the standardwebhooks library, retries on a (shortened)
 * schedule, Retry-After, 410, redirects, the SSRF guard at creation and at send time, restarts, a
 * node that dies holding deliveries, and two nodes sharing the work without sending one twice.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, type AppOptions, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { CampaignInput } from '../../src/services/campaigns.js';
import { type OpenedDatabase, openDatabase } from '../../src/store/connect.js';
import type { Database } from '../../src/store/schema.js';
import { claimDueDeliveries } from '../../src/store/webhooks.js';
import { campaignBody, silentLogger, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends, type TestBackend } from '../support/backends.js';
import { type Received, Receiver } from './receiver.js';

/** Ports 21300–21399 belong to this suite. */
let nextPort = 21300;
const receivers: Receiver[] = [];
async function receiver(): Promise<Receiver> {
  const r = await new Receiver(nextPort++).start();
  receivers.push(r);
  return r;
}
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.stop()));
});

/** The spec's schedule shortened: tests must not wait minutes. */
const SHORT_SCHEDULE = [0, 100, 100, 100, 100, 100, 100, 100];
const webhookTiming: AppOptions['webhooks'] = { schedule: SHORT_SCHEDULE, random: () => 0.5 };
const ENV = { WEBHOOKS_ALLOW_HOSTS: '127.0.0.1', WEBHOOKS_POLL_MS: '50', WEBHOOKS_TIMEOUT_MS: '2000' };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function campaignInput(): CampaignInput {
  return {
    name: unique('hook '),
    currency: 'USD',
    discount: { type: 'fixed_amount', amountMinor: 500 },
    status: 'active',
    startsAt: new Date('2020-01-01T00:00:00Z'),
  };
}

function verify(secret: string, got: Received): unknown {
  return new Webhook(secret).verify(got.body, {
    'webhook-id': String(got.headers['webhook-id']),
    'webhook-timestamp': String(got.headers['webhook-timestamp']),
    'webhook-signature': String(got.headers['webhook-signature']),
  });
}

async function createHook(
  t: TestApp,
  url: string,
  eventTypes: string[] = ['campaign.created'],
): Promise<{ id: string; secret: string }> {
  const res = await t.call('POST', '/v1/webhooks', { body: { url, event_types: eventTypes } });
  if (res.statusCode !== 201) throw new Error(`webhook: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** One `campaign.created` event; its campaign id. */
async function emit(t: TestApp): Promise<string> {
  const res = await t.call('POST', '/v1/campaigns', { body: campaignBody({ name: unique('hook ') }) });
  if (res.statusCode !== 201) throw new Error(`campaign: ${res.statusCode} ${res.body}`);
  return res.json().id;
}

async function deliveriesOf(t: TestApp, id: string) {
  const res = await t.call('GET', `/v1/webhooks/${id}/deliveries`);
  expect(res.statusCode).toBe(200);
  return res.json().data as {
    id: string;
    event_id: string;
    status: string;
    attempts: number;
    next_attempt_at: string | null;
    last_status_code: number | null;
    last_error: string | null;
    attempt_log: { status_code: number | null; error: string | null; attempted_at: string }[];
  }[];
}

/** A database two apps can open one after the other (restart) or side by side (PostgreSQL). */
async function durableDatabase(
  backend: TestBackend,
): Promise<{ env: Record<string, string>; databaseUrl?: string; dispose(): Promise<void> }> {
  if (backend.name === 'pglite') {
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-webhooks-'));
    return { env: { PROMOGUARD_DATA_DIR: dir }, dispose: () => rm(dir, { recursive: true, force: true }) };
  }
  const holder = await backend.open<Database>();
  if (!holder.databaseUrl) throw new Error('PostgreSQL backend gave no URL');
  return {
    env: { DATABASE_URL: holder.databaseUrl },
    databaseUrl: holder.databaseUrl,
    dispose: () => holder.close(),
  };
}

function openApp(env: Record<string, string>, extra: Partial<AppOptions> = {}): Promise<App> {
  return createApp({
    config: loadConfig({ LOG_LEVEL: 'silent', APPROVALS: 'off', OUTBOX_POLL_MS: '50', ...ENV, ...env }),
    logger: silentLogger,
    webhooks: webhookTiming,
    ...extra,
  });
}

describe.each(backends.map((b) => [b.name, b] as const))('webhooks on %s', (_name, backend) => {
  let t: TestApp;
  let hooksKey: string;

  beforeAll(async () => {
    t = await startTestApp(backend, { env: ENV, webhooks: webhookTiming });
    hooksKey = (await t.app.apiKeys.create('hooks', ['webhooks'], 'test')).secret;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates, reads, changes and deletes an endpoint; the whsec_ secret is shown once and kept encrypted; each change is audited and evented', async () => {
    const r = await receiver();
    const created = await t.call('POST', '/v1/webhooks', {
      key: hooksKey,
      body: { url: r.url(), event_types: ['campaign.created', 'redemption.created'], description: 'orders' },
    });
    expect(created.statusCode).toBe(201);
    const hook = created.json();
    expect(hook).toMatchObject({ url: r.url(), enabled: true, description: 'orders', disabled_reason: null });
    expect(hook.id).toMatch(/^whk_[0-9A-Z]{26}$/);
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(hook.secret.slice(6), 'base64')).toHaveLength(32);

    const read = await t.call('GET', `/v1/webhooks/${hook.id}`, { key: hooksKey });
    expect(read.statusCode).toBe(200);
    expect(read.json()).not.toHaveProperty('secret');
    const listed = await t.call('GET', '/v1/webhooks', { key: hooksKey });
    expect(listed.json().data.map((w: { id: string }) => w.id)).toContain(hook.id);
    expect(listed.body).not.toContain(hook.secret.slice(6));

    // At rest the secret is sealed: neither it nor its key material appears in the row.
    const row = await t.app.db
      .selectFrom('webhook_endpoints')
      .select('secret_encrypted')
      .where('id', '=', hook.id)
      .executeTakeFirstOrThrow();
    expect(row.secret_encrypted).not.toContain(hook.secret.slice(6));
    expect(row.secret_encrypted).toMatch(/^v1\./);

    const patched = await t.call('PATCH', `/v1/webhooks/${hook.id}`, {
      key: hooksKey,
      body: { event_types: ['*'], enabled: false },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ event_types: ['*'], enabled: false });

    const rotated = await t.call('POST', `/v1/webhooks/${hook.id}/rotate-secret`, { key: hooksKey });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().secret).toMatch(/^whsec_/);
    expect(rotated.json().secret).not.toBe(hook.secret);

    expect((await t.call('DELETE', `/v1/webhooks/${hook.id}`, { key: hooksKey })).statusCode).toBe(204);
    const gone = await t.call('GET', `/v1/webhooks/${hook.id}`, { key: hooksKey });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('webhook_not_found');

    const audit = await t.app.audit.list({ limit: 20, targetId: hook.id });
    expect(audit.map((a) => a.action).reverse()).toEqual([
      'webhook.created',
      'webhook.updated',
      'webhook.secret_rotated',
      'webhook.deleted',
    ]);
    expect(JSON.stringify(audit)).not.toContain(hook.secret.slice(6));
    expect(audit.find((a) => a.action === 'webhook.updated')?.details).toMatchObject({
      changes: { enabled: { from: true, to: false }, event_types: { to: ['*'] } },
    });
    const events = await sql<{ type: string; payload: unknown }>`
      SELECT type, payload FROM outbox WHERE aggregate_id = ${hook.id} ORDER BY seq`.execute(t.app.db);
    expect(events.rows.map((e) => e.type)).toEqual([
      'webhook.created',
      'webhook.updated',
      'webhook.secret_rotated',
      'webhook.deleted',
    ]);
    expect(JSON.stringify(events.rows)).not.toContain(hook.secret.slice(6));
  });

  it('needs the webhooks scope (or admin): other keys are refused', async () => {
    const r = await receiver();
    const marketing = await t.call('POST', '/v1/webhooks', {
      key: t.keys.marketing,
      body: { url: r.url(), event_types: ['*'] },
    });
    expect(marketing.statusCode).toBe(403);
    expect((await t.call('GET', '/v1/webhooks', { key: t.keys.checkout })).statusCode).toBe(403);
    expect((await t.call('GET', '/v1/webhooks', { key: null })).statusCode).toBe(401);
    expect((await t.call('GET', '/v1/webhooks', { key: hooksKey })).statusCode).toBe(200);
    expect((await t.call('GET', '/v1/webhooks', { key: t.keys.admin })).statusCode).toBe(200);
  });

  it('an endpoint answering 500 three times then 200 receives the event once successfully, signed so Webhook.verify accepts it', async () => {
    const r = await receiver();
    r.answer = (n) => ({ status: n < 3 ? 500 : 200 });
    const hook = await createHook(t, r.url());
    const campaignId = await emit(t);
    await vi.waitFor(() => expect(r.received).toHaveLength(4), { timeout: 15_000, interval: 25 });
    await vi.waitFor(async () => expect((await deliveriesOf(t, hook.id))[0]?.status).toBe('succeeded'), {
      timeout: 5_000,
    });
    // Nothing follows the success.
    await sleep(400);
    expect(r.received).toHaveLength(4);

    const ids = new Set(r.received.map((g) => g.headers['webhook-id']));
    expect(ids.size).toBe(1);
    for (const got of r.received) {
      expect(got.headers['content-type']).toBe('application/json');
      const payload = verify(hook.secret, got) as { type: string; timestamp: string; data: unknown };
      expect(payload).toMatchObject({ type: 'campaign.created', data: { campaign: { id: campaignId } } });
    }
    // A signature made with another secret is refused by the same verifier.
    const last = r.received[3] as Received;
    expect(() => verify(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, last)).toThrow();

    const [delivery] = await deliveriesOf(t, hook.id);
    expect(delivery).toMatchObject({
      status: 'succeeded',
      attempts: 4,
      last_status_code: 200,
      next_attempt_at: null,
    });
    expect(delivery?.event_id).toBe([...ids][0]);
    expect(delivery?.attempt_log.map((a) => a.status_code)).toEqual([500, 500, 500, 200]);

    // Redelivery sends the same message again: the same webhook-id, verifiable.
    const again = await t.call('POST', `/v1/webhooks/${hook.id}/deliveries/${delivery?.id}/redeliver`);
    expect(again.statusCode).toBe(202);
    await vi.waitFor(() => expect(r.received).toHaveLength(5), { timeout: 5_000 });
    expect(r.received[4]?.headers['webhook-id']).toBe(delivery?.event_id);
    expect(() => verify(hook.secret, r.received[4] as Received)).not.toThrow();
    const audit = await t.app.audit.list({ limit: 5, targetId: delivery?.id ?? '' });
    expect(audit.map((a) => a.action)).toEqual(['webhook.redelivery_requested']);
    const unknown = await t.call(
      'POST',
      `/v1/webhooks/${hook.id}/deliveries/whd_00000000000000000000000000/redeliver`,
    );
    expect(unknown.json().code).toBe('webhook_delivery_not_found');
  });

  it('sends only the event types an endpoint asked for', async () => {
    const r = await receiver();
    await createHook(t, r.url(), ['redemption.created']);
    await emit(t);
    await sleep(500);
    expect(r.received).toHaveLength(0);
  });

  it('a 410 answer disables the endpoint, audited and evented, and nothing more is sent to it', async () => {
    const r = await receiver();
    r.answer = () => ({ status: 410 });
    const hook = await createHook(t, r.url());
    await emit(t);
    await vi.waitFor(
      async () => {
        const read = await t.call('GET', `/v1/webhooks/${hook.id}`);
        expect(read.json()).toMatchObject({ enabled: false, disabled_reason: 'gone' });
      },
      { timeout: 10_000 },
    );
    expect(r.received).toHaveLength(1);
    const [delivery] = await deliveriesOf(t, hook.id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 1, last_status_code: 410 });
    await emit(t);
    await sleep(500);
    expect(r.received).toHaveLength(1);
    const audit = await t.app.audit.list({ limit: 5, targetId: hook.id });
    expect(audit[0]).toMatchObject({ action: 'webhook.disabled', actor: 'promoguard' });
    const events = await sql<{ type: string }>`
      SELECT type FROM outbox WHERE aggregate_id = ${hook.id} ORDER BY seq`.execute(t.app.db);
    expect(events.rows.map((e) => e.type)).toContain('webhook.disabled');

    // Enabling it again clears "gone" and it receives new events.
    r.answer = () => ({ status: 200 });
    const enabled = await t.call('PATCH', `/v1/webhooks/${hook.id}`, { body: { enabled: true } });
    expect(enabled.json()).toMatchObject({ enabled: true, disabled_reason: null });
    await emit(t);
    await vi.waitFor(() => expect(r.received).toHaveLength(2), { timeout: 10_000 });
  });

  it("holds the next attempt back for the receiver's Retry-After, and shows it in the delivery log", async () => {
    const r = await receiver();
    r.answer = (n) => (n === 0 ? { status: 503, headers: { 'retry-after': '2' } } : { status: 200 });
    const hook = await createHook(t, r.url());
    await emit(t);
    await vi.waitFor(() => expect(r.received).toHaveLength(1), { timeout: 10_000 });
    await vi.waitFor(
      async () => {
        const [d] = await deliveriesOf(t, hook.id);
        expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 503 });
        const waited =
          Date.parse(d?.next_attempt_at ?? '') - Date.parse(d?.attempt_log[0]?.attempted_at ?? '');
        // The schedule alone would retry after 100 ms.
        expect(waited).toBeGreaterThanOrEqual(1_900);
      },
      { timeout: 5_000 },
    );
    await vi.waitFor(() => expect(r.received).toHaveLength(2), { timeout: 10_000 });
    const gap = (r.received[1] as Received).at - (r.received[0] as Received).at;
    expect(gap).toBeGreaterThanOrEqual(1_900);
  });

  it('does not follow a redirect: the attempt fails and the target of the redirect gets nothing', async () => {
    const r = await receiver();
    r.answer = (_n, got) =>
      got.path === '/hook' ? { status: 307, headers: { location: r.url('/elsewhere') } } : { status: 200 };
    const hook = await createHook(t, r.url());
    await emit(t);
    await vi.waitFor(
      async () => expect((await deliveriesOf(t, hook.id))[0]?.attempts).toBeGreaterThanOrEqual(2),
      {
        timeout: 10_000,
      },
    );
    expect(r.received.every((g) => g.path === '/hook')).toBe(true);
    const [d] = await deliveriesOf(t, hook.id);
    expect(d?.attempt_log[0]).toMatchObject({ status_code: 307, error: 'redirect not followed' });
  });

  it('abandons an attempt that takes longer than the timeout, and reads no more than the answer limit', async () => {
    const r = await receiver();
    r.answer = (n) =>
      n === 0 ? { status: 200, delayMs: 3_000 } : { status: 200, body: 'x'.repeat(200_000) };
    const hook = await createHook(t, r.url());
    await emit(t);
    await vi.waitFor(async () => expect((await deliveriesOf(t, hook.id))[0]?.status).toBe('succeeded'), {
      timeout: 15_000,
    });
    const [d] = await deliveriesOf(t, hook.id);
    expect(d?.attempt_log[0]).toMatchObject({ status_code: null, error: 'timed out after 2000 ms' });
    expect(d?.attempt_log[1]).toMatchObject({ status_code: 200, error: null });
  });

  it('a node that dies holding deliveries leaves them to be sent by another once its lease ends', async () => {
    const r = await receiver();
    await t.app.webhookSender.stop();
    try {
      const hook = await createHook(t, r.url());
      await emit(t);
      await emit(t);
      await vi.waitFor(
        async () => {
          await t.app.relay.drain();
          const rows = await t.app.db
            .selectFrom('webhook_deliveries')
            .select('id')
            .where('endpoint_id', '=', hook.id)
            .execute();
          expect(rows).toHaveLength(2);
        },
        { timeout: 10_000 },
      );
      // The "dead node": it claimed both and will never record an attempt.
      const claimedAt = Date.now();
      // Whatever else is due in this database is claimed too, so both of this endpoint's are in the batch.
      const claimed = await claimDueDeliveries(t.app.db, new Date(), 1_000, 1_000, 'dead-node');
      expect(claimed.filter((c) => c.endpointId === hook.id)).toHaveLength(2);
      t.app.webhookSender.start();
      await vi.waitFor(() => expect(r.received).toHaveLength(2), { timeout: 10_000 });
      for (const got of r.received) expect(got.at - claimedAt).toBeGreaterThanOrEqual(950);
      await sleep(300);
      expect(new Set(r.received.map((g) => g.headers['webhook-id'])).size).toBe(2);
    } finally {
      t.app.webhookSender.start();
    }
  });

  describe('the SSRF guard', () => {
    let guarded: TestApp;
    const answers = new Map<string, string>();

    beforeAll(async () => {
      // Only a host name is allowed here: every address, loopback included, is judged by its class.
      guarded = await startTestApp(backend, {
        env: { ...ENV, WEBHOOKS_ALLOW_HOSTS: 'pinned.test' },
        webhooks: {
          ...webhookTiming,
          resolve: async (host) => {
            const address = answers.get(host);
            return address ? [{ address, family: address.includes(':') ? 6 : 4 }] : [];
          },
        },
      });
    });
    afterAll(async () => {
      await guarded?.close();
    });

    it.each([
      ['loopback', 'http://127.0.0.1:21399/'],
      ['loopback (IPv6)', 'http://[::1]/'],
      ['loopback (IPv4-mapped IPv6)', 'http://[::ffff:127.0.0.1]/'],
      ['private', 'http://10.0.0.1/'],
      ['private', 'http://192.168.1.10/'],
      ['private', 'http://172.16.5.4/'],
      ['link-local (cloud metadata)', 'http://169.254.169.254/latest/meta-data'],
      ['link-local (IPv6)', 'http://[fe80::1]/'],
      ['unique-local', 'http://[fd12:3456::1]/'],
      ['multicast', 'http://224.0.0.1/'],
      ['multicast (IPv6)', 'http://[ff02::1]/'],
      ['carrier-grade NAT', 'http://100.64.0.1/'],
      ['unspecified', 'http://0.0.0.0/'],
      ['unspecified (IPv6)', 'http://[::]/'],
    ])('refuses a %s target at creation: %s', async (_kind, url) => {
      const res = await guarded.call('POST', '/v1/webhooks', { body: { url, event_types: ['*'] } });
      expect(res.statusCode).toBe(422);
      expect(res.json().code).toBe('webhook_url_refused');
    });

    it('refuses a host name that resolves to a private address, at creation and when changed', async () => {
      answers.set('internal.test', '10.1.2.3');
      answers.set('public.test', '93.184.216.34');
      const res = await guarded.call('POST', '/v1/webhooks', {
        body: { url: 'https://internal.test/hook', event_types: ['*'] },
      });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'webhook_url_refused', address_class: 'private' });
      const ok = await guarded.call('POST', '/v1/webhooks', {
        body: { url: 'https://public.test/hook', event_types: ['redemption.created'] },
      });
      expect(ok.statusCode).toBe(201);
      const patched = await guarded.call('PATCH', `/v1/webhooks/${ok.json().id}`, {
        body: { url: 'https://internal.test/hook' },
      });
      expect(patched.json().code).toBe('webhook_url_refused');
    });

    it('refuses at send time a host that now resolves to a private address (DNS rebinding)', async () => {
      const r = await receiver();
      answers.set('rebind.test', '93.184.216.34');
      const hook = await createHook(guarded, `http://rebind.test:${r.port}/hook`);
      answers.set('rebind.test', '127.0.0.1');
      await emit(guarded);
      await vi.waitFor(
        async () => expect((await deliveriesOf(guarded, hook.id))[0]?.attempts).toBeGreaterThanOrEqual(1),
        {
          timeout: 10_000,
        },
      );
      const [d] = await deliveriesOf(guarded, hook.id);
      expect(d?.attempt_log[0]?.error).toBe('refused: the host resolves to a loopback address');
      expect(r.received).toHaveLength(0);
    });

    it('connects to the address it checked, with the host name in the Host header', async () => {
      const r = await receiver();
      answers.set('pinned.test', '127.0.0.1');
      const hook = await createHook(guarded, `http://pinned.test:${r.port}/hook`);
      await emit(guarded);
      await vi.waitFor(() => expect(r.received).toHaveLength(1), { timeout: 10_000 });
      expect(r.received[0]?.headers.host).toBe(`pinned.test:${r.port}`);
      expect(() => verify(hook.secret, r.received[0] as Received)).not.toThrow();
    });
  });

  it('a restart between attempts loses nothing: the reopened app completes the delivery exactly once', async () => {
    const r = await receiver();
    r.answer = (n) => ({ status: n < 3 ? 500 : 200 });
    const durable = await durableDatabase(backend);
    try {
      // A long second step: the first app is closed while the delivery waits for it.
      const first = await openApp(durable.env, {
        webhooks: { schedule: [0, 1_000, 100, 100, 100, 100, 100, 100], random: () => 0.5 },
      });
      const { secret, endpoint } = await first.webhooks.create(
        { url: r.url(), eventTypes: ['campaign.created'] },
        'test',
      );
      await first.campaigns.create(campaignInput(), 'test');
      await vi.waitFor(() => expect(r.received).toHaveLength(1), { timeout: 10_000 });
      await first.close();
      expect(r.received).toHaveLength(1);

      const second = await openApp(durable.env);
      try {
        await vi.waitFor(() => expect(r.received).toHaveLength(4), { timeout: 15_000 });
        await sleep(400);
        expect(r.received).toHaveLength(4);
        expect(new Set(r.received.map((g) => g.headers['webhook-id'])).size).toBe(1);
        for (const got of r.received) expect(() => verify(secret, got)).not.toThrow();
        const [d] = await second.webhooks.deliveries(endpoint.id, 10, undefined, undefined);
        expect(d).toMatchObject({ status: 'succeeded', attempts: 4 });
      } finally {
        await second.close();
      }
    } finally {
      await durable.dispose();
    }
  });

  it.runIf(backend.name === 'postgres')(
    'two nodes on one PostgreSQL share the deliveries and never send one twice',
    async () => {
      const r = await receiver();
      // Slow answers keep deliveries in flight while the other node looks for due ones.
      r.answer = () => ({ status: 200, delayMs: 150 });
      const durable = await durableDatabase(backend);
      const opened: OpenedDatabase<Database>[] = [];
      try {
        const node = async () => {
          const database = await openDatabase<Database>({ databaseUrl: durable.databaseUrl, poolSize: 4 });
          opened.push(database);
          return openApp({}, { database });
        };
        const a = await node();
        const b = await node();
        try {
          await a.webhooks.create({ url: r.url(), eventTypes: ['campaign.created'] }, 'test');
          const count = 30;
          for (let i = 0; i < count; i++) {
            await (i % 2 === 0 ? a : b).campaigns.create(campaignInput(), 'test');
          }
          await vi.waitFor(() => expect(r.received.length).toBeGreaterThanOrEqual(count), {
            timeout: 30_000,
          });
          await sleep(500);
          const ids = r.received.map((g) => String(g.headers['webhook-id']));
          expect(ids).toHaveLength(count);
          expect(new Set(ids).size).toBe(count);
          const attempts = await sql<{ n: string }>`SELECT count(*) AS n FROM webhook_attempts`.execute(a.db);
          expect(Number(attempts.rows[0]?.n)).toBe(count);
        } finally {
          await a.close();
          await b.close();
        }
      } finally {
        await durable.dispose();
      }
    },
  );
});
