/**
 * Three API processes (the built CLI, `promoguard serve`) on one PostgreSQL, one Redis and one NATS:
 * load spread over all three keeps every cap exact, a pause issued on one node refuses the next request
 * on the others, and each committed redemption reaches JetStream exactly once after deduplication.
 * Needs the built dist/ (npm test builds it first) and the three servers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteStream, testNatsUrl, uniqueStream } from '../support/nats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'promoguard.js');
const databaseAdminUrl = process.env['TEST_DATABASE_URL'];
const testRedisUrl = process.env['TEST_REDIS_URL'];
const built = existsSync(path.join(ROOT, 'dist', 'cli.js'));
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());
const ready = Boolean(databaseAdminUrl && testRedisUrl && testNatsUrl && built);
if (!ready && inCi)
  throw new Error('the three-node suite needs PostgreSQL, Redis, NATS and a built dist/ under CI');

const PORTS = [21711, 21712, 21713] as const;

interface Node {
  url: string;
  child: ChildProcess;
}

async function waitUntil(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

describe.runIf(ready)('three API nodes on one PostgreSQL, Redis and NATS', () => {
  const database = `promoguard_nodes_${randomBytes(6).toString('hex')}`;
  const stream = uniqueStream('nodes');
  const nodes: Node[] = [];
  let output = '';
  let admin = '';
  let checkout = '';

  const withAdmin = async (sql: string) => {
    const client = new pg.Client({ connectionString: databaseAdminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  const start = async (port: number): Promise<Node> => {
    const url = new URL(databaseAdminUrl as string);
    url.pathname = `/${database}`;
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: url.toString(),
        REDIS_URL: testRedisUrl as string,
        REDIS_KEY_PREFIX: `pg:nodes:${database}`,
        NATS_URL: testNatsUrl as string,
        ...stream,
        PROMOGUARD_SECRET: 'three-node-suite-secret-0123456789abcdef',
        APPROVALS: 'off',
        LOG_LEVEL: 'warn',
        OUTBOX_POLL_MS: '200',
        DATABASE_POOL_SIZE: '5',
        RATE_LIMIT_PER_MINUTE: '100000',
        RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '100000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-20_000);
    });
    const node = { url: `http://127.0.0.1:${port}`, child };
    await waitUntil(`node on ${port} ready`, async () => (await fetch(`${node.url}/readyz`)).ok);
    return node;
  };

  const call = async (
    node: Node,
    method: string,
    route: string,
    key: string,
    body?: unknown,
    idem?: string,
  ) => {
    for (let tries = 1; ; tries++) {
      const res = await fetch(`${node.url}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(idem ? { 'idempotency-key': idem } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json = (await res.json()) as Record<string, unknown>;
      // A 503 (the pool or statement timeout of an overloaded host) is asked again after its
      // Retry-After, as a checkout backend does; only keyed requests, so a repeat changes nothing.
      if (res.status !== 503 || !idem || tries >= 20) return { status: res.status, json };
      await new Promise((r) => setTimeout(r, 1_000 * Number(json.retry_after_seconds ?? 1)));
    }
  };

  beforeAll(async () => {
    await withAdmin(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    // The first node migrates the empty database and prints the admin key; the others join it.
    nodes.push(await start(PORTS[0]));
    admin = /pgk_[A-Za-z0-9_-]+/.exec(output)?.[0] ?? '';
    if (!admin) throw new Error(`no admin key printed:\n${output}`);
    nodes.push(await start(PORTS[1]), await start(PORTS[2]));
    const key = await call(nodes[0] as Node, 'POST', '/v1/api-keys', admin, {
      name: 'checkout',
      scopes: ['checkout'],
    });
    checkout = String(key.json.secret);
  }, 120_000);

  afterAll(async () => {
    for (const n of nodes) {
      if (n.child.exitCode === null) {
        const exited = new Promise((r) => n.child.once('exit', r));
        n.child.kill('SIGTERM');
        await exited;
      }
    }
    await deleteStream(testNatsUrl as string, stream.NATS_STREAM).catch(() => {});
    await withAdmin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  });

  it('holds the caps exactly, pauses everywhere at once, and streams each redemption once', async () => {
    const made = await call(nodes[0] as Node, 'POST', '/v1/campaigns', admin, {
      name: 'three nodes',
      currency: 'USD',
      status: 'active',
      discount: { type: 'fixed_amount', amount_minor: 100 },
      redemption_cap: 40,
      budget_minor: 100_000,
      per_customer_cap: 1,
    });
    expect(made.status, JSON.stringify(made.json)).toBe(201);
    const campaignId = String(made.json.id);
    expect(
      (await call(nodes[1] as Node, 'POST', `/v1/campaigns/${campaignId}/codes`, admin, { code: 'NODES40' }))
        .status,
    ).toBe(201);

    const body = (customer: string) => ({
      code: 'NODES40',
      customer: { id: customer },
      cart: { currency: 'USD', subtotal_minor: 5_000 },
    });
    // 30 attempts of one customer (per-customer cap 1), then 150 of distinct customers (campaign cap 40).
    const requests = [
      ...Array.from({ length: 30 }, (_, i) => ({ customer: 'cus_same', i })),
      ...Array.from({ length: 150 }, (_, i) => ({ customer: `cus_${i}`, i: i + 30 })),
    ];
    const answers = await Promise.all(
      requests.map((r) =>
        call(nodes[r.i % 3] as Node, 'POST', '/v1/redemptions', checkout, body(r.customer), `nodes-${r.i}`),
      ),
    );
    const redeemed = answers.filter((a) => a.status === 201);
    const reasons = answers.filter((a) => a.status === 422).map((a) => String(a.json.reason));
    expect(answers.filter((a) => a.status !== 201 && a.status !== 422)).toEqual([]);
    expect(redeemed).toHaveLength(40);
    const sameCustomer = answers.slice(0, 30).filter((a) => a.status === 201);
    expect(sameCustomer.length).toBeLessThanOrEqual(1);
    expect(new Set(reasons)).toEqual(new Set(['customer_cap_reached', 'campaign_cap_reached']));
    const campaign = await call(nodes[2] as Node, 'GET', `/v1/campaigns/${campaignId}`, admin);
    expect(campaign.json).toMatchObject({ redemptions_used: 40, spent_minor: 4_000 });

    // A pause on node A refuses the very next request on B and C.
    const other = await call(nodes[0] as Node, 'POST', '/v1/campaigns', admin, {
      name: 'paused on A',
      currency: 'USD',
      status: 'active',
      discount: { type: 'fixed_amount', amount_minor: 100 },
      redemption_cap: 10,
    });
    const otherId = String(other.json.id);
    await call(nodes[0] as Node, 'POST', `/v1/campaigns/${otherId}/codes`, admin, { code: 'PAUSEME' });
    const paused = await call(nodes[0] as Node, 'POST', `/v1/campaigns/${otherId}/pause`, admin, {
      reason: 'test',
    });
    expect(paused.status, JSON.stringify(paused.json)).toBe(200);
    for (const [i, node] of [nodes[1], nodes[2]].entries()) {
      const res = await call(
        node as Node,
        'POST',
        '/v1/redemptions',
        checkout,
        { ...body(`cus_p${i}`), code: 'PAUSEME' },
        `pause-${i}`,
      );
      expect(res.json).toMatchObject({ reason: 'campaign_paused' });
    }

    // Every redemption.created reaches the stream once (JetStream drops repeats by Nats-Msg-Id).
    const nc = await connect({ servers: testNatsUrl as string });
    try {
      const jsm = await jetstreamManager(nc);
      const ids = new Set(redeemed.map((a) => String(a.json.id)));
      let seen = new Map<string, number>();
      await waitUntil(
        'all redemption.created messages on the stream',
        async () => {
          seen = new Map();
          const { state } = await jsm.streams.info(stream.NATS_STREAM);
          for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
            const m = await jsm.streams.getMessage(stream.NATS_STREAM, { seq }).catch(() => null);
            if (!m || m.subject !== `${stream.NATS_SUBJECT_PREFIX}.redemption.created`) continue;
            const aggregate = String((m.json() as { aggregateId: string }).aggregateId);
            seen.set(aggregate, (seen.get(aggregate) ?? 0) + 1);
          }
          return [...ids].every((id) => seen.has(id));
        },
        20_000,
      );
      expect([...seen.keys()].sort()).toEqual([...ids].sort());
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await nc.close();
    }
  }, 120_000);
});
