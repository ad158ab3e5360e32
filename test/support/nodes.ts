/**
 * Several API processes (the built CLI, `promoguard serve`) on one PostgreSQL database of their own,
 * one Redis key prefix and one JetStream stream of their own, for the scale suites. The first node
 * migrates the empty database and prints the admin key; the others join it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { deleteStream, testNatsUrl, uniqueStream } from './nats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'promoguard.js');
const databaseAdminUrl = process.env['TEST_DATABASE_URL'];
const testRedisUrl = process.env['TEST_REDIS_URL'];
const built = existsSync(path.join(ROOT, 'dist', 'cli.js'));
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

export const clusterReady = Boolean(databaseAdminUrl && testRedisUrl && testNatsUrl && built);
if (!clusterReady && inCi)
  throw new Error('the scale suites need PostgreSQL, Redis, NATS and a built dist/ under CI');

export interface ApiNode {
  url: string;
  port: number;
  child: ChildProcess;
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
}

export async function waitUntil(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

export class Cluster {
  readonly database = `promoguard_nodes_${randomBytes(6).toString('hex')}`;
  readonly stream: { NATS_STREAM: string; NATS_SUBJECT_PREFIX: string };
  readonly nodes: ApiNode[] = [];
  readonly pool: pg.Pool;
  admin = '';
  checkout = '';
  output = '';

  constructor(
    tag: string,
    private readonly ports: readonly number[],
    private readonly env: Record<string, string> = {},
  ) {
    this.stream = uniqueStream(tag);
    const url = new URL(databaseAdminUrl as string);
    url.pathname = `/${this.database}`;
    this.pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  }

  private async admin_(sql: string): Promise<void> {
    const client = new pg.Client({ connectionString: databaseAdminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  private async startNode(port: number): Promise<ApiNode> {
    const url = new URL(databaseAdminUrl as string);
    url.pathname = `/${this.database}`;
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: url.toString(),
        REDIS_URL: testRedisUrl as string,
        REDIS_KEY_PREFIX: `pg:nodes:${this.database}`,
        NATS_URL: testNatsUrl as string,
        ...this.stream,
        PROMOGUARD_SECRET: 'scale-suite-secret-0123456789abcdef0123',
        APPROVALS: 'off',
        RISK_DEFAULT_PACK: 'off',
        LOG_LEVEL: 'warn',
        OUTBOX_POLL_MS: '200',
        DATABASE_POOL_SIZE: '5',
        RATE_LIMIT_PER_MINUTE: '100000',
        RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '100000',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-50_000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-50_000);
    });
    const node = { url: `http://127.0.0.1:${port}`, port, child };
    // Known before it is ready, so that stop() ends it even if it never gets there.
    this.nodes.push(node);
    await waitUntil(`node on ${port} ready`, async () => (await fetch(`${node.url}/readyz`)).ok, 60_000);
    return node;
  }

  async start(): Promise<void> {
    await this.admin_(`CREATE DATABASE ${pg.escapeIdentifier(this.database)}`);
    const [first, ...rest] = this.ports;
    await this.startNode(first as number);
    this.admin = /pgk_[A-Za-z0-9_-]+/.exec(this.output)?.[0] ?? '';
    if (!this.admin) throw new Error(`no admin key printed:\n${this.output}`);
    // Each is listed as it is spawned (before its first await), so node(i) is the i-th port.
    await Promise.all(rest.map((p) => this.startNode(p)));
    const key = await this.call(0, 'POST', '/v1/api-keys', this.admin, {
      name: 'checkout',
      scopes: ['checkout'],
    });
    this.checkout = String(key.json.secret);
  }

  node(i: number): ApiNode {
    return this.nodes[i] as ApiNode;
  }

  async call(
    i: number,
    method: string,
    route: string,
    key: string,
    body?: unknown,
    idem?: string,
  ): Promise<Answer> {
    const res = await fetch(`${this.node(i).url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(idem ? { 'idempotency-key': idem } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /**
   * As `call`, but a 503 (the database's pool or statement timeout on an overloaded host) is asked again
   * after its Retry-After, as a checkout backend does: with the same idempotency key, so it changes nothing.
   */
  async callRetrying(
    i: number,
    method: string,
    route: string,
    key: string,
    body?: unknown,
    idem?: string,
  ): Promise<Answer> {
    for (let tries = 1; ; tries++) {
      // A connection the node closed under load (a keep-alive race) is asked again too.
      const a = await this.call(i, method, route, key, body, idem).catch((err: unknown) => {
        if (tries >= 20) throw err;
        return { status: 503, json: {} as Record<string, unknown> };
      });
      if (a.status !== 503 || tries >= 20) return a;
      await new Promise((r) => setTimeout(r, 1_000 * Number(a.json.retry_after_seconds ?? 1)));
    }
  }

  /** The node's /metrics, as sample lines. */
  async metrics(i: number): Promise<string> {
    return (await fetch(`${this.node(i).url}/metrics`)).text();
  }

  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  kill(i: number): Promise<void> {
    const child = this.node(i).child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    return exited;
  }

  alive(i: number): boolean {
    const child = this.node(i).child;
    return child.exitCode === null && child.signalCode === null;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.child.exitCode !== null || n.child.signalCode !== null) return;
        const exited = new Promise((r) => n.child.once('exit', r));
        n.child.kill('SIGTERM');
        // A node that does not finish its shutdown in time is killed: none may outlive the suite.
        const timer = setTimeout(() => n.child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await this.pool.end();
    await deleteStream(testNatsUrl as string, this.stream.NATS_STREAM).catch(() => {});
    await this.admin_(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(this.database)} WITH (FORCE)`);
  }
}

export interface StreamedEvent {
  seq: number;
  subject: string;
  id: string;
  type: string;
  aggregateId: string;
  createdAt: string;
}

/** Every message of `stream` on `subject`, in stream order, read with an ordered consumer. */
export async function readSubject(stream: string, subject: string): Promise<StreamedEvent[]> {
  const nc = await connect({ servers: testNatsUrl as string });
  const out: StreamedEvent[] = [];
  try {
    const consumer = await jetstream(nc).consumers.get(stream, { filter_subjects: subject });
    for (let done = false; !done; ) {
      let read = 0;
      const batch = await consumer.fetch({ max_messages: 2_000, expires: 2_000 });
      for await (const m of batch) {
        read++;
        const e = m.json<{ id: string; type: string; aggregateId: string; createdAt: string }>();
        out.push({
          seq: m.seq,
          subject: m.subject,
          id: e.id,
          type: e.type,
          aggregateId: e.aggregateId,
          createdAt: e.createdAt,
        });
        if (m.info.pending === 0) done = true;
      }
      if (read === 0) done = true;
    }
  } finally {
    await nc.close();
  }
  return out;
}
