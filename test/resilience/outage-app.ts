/**
 * The real app and HTTP server, listening on a port, for tests that take a dependency away under it.
 * Every log line of the app and of Fastify is kept, so a test can read what an outage put in the log.
 */
import { Writable } from 'node:stream';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import type { OpenedDatabase } from '../../src/store/connect.js';
import type { Database } from '../../src/store/schema.js';

export interface LogLine {
  level: 'error' | 'info';
  msg: string;
  fields: Record<string, unknown>;
}

export interface OutageApp {
  app: App;
  url: string;
  adminKey: string;
  /** Everything logged at error or info since start (or since the last `clearLog`). */
  log: LogLine[];
  clearLog(): void;
  close(): Promise<void>;
}

const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

/** Whether a suite needing `what` runs here; under CI a missing tool fails instead of skipping. */
export function required(available: boolean, what: string): boolean {
  if (available) return true;
  if (inCi) throw new Error(`${what} is required under CI`);
  process.stderr.write(`${what} not found: this suite is skipped\n`);
  return false;
}

export async function startOutageApp(
  env: Record<string, string>,
  database?: OpenedDatabase<Database>,
): Promise<OutageApp> {
  const log: LogLine[] = [];
  const config = loadConfig({
    LOG_LEVEL: 'info',
    OUTBOX_POLL_MS: '200',
    APPROVALS: 'off',
    RISK_DEFAULT_PACK: 'off',
    RATE_LIMIT_PER_MINUTE: '100000',
    RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '1000000',
    LOCKOUT_AFTER_FAILURES: '10000',
    LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '1000000',
    ...env,
  });
  const app = await createApp({
    config,
    logger: {
      error: (fields, msg) => log.push({ level: 'error', msg, fields: fields as Record<string, unknown> }),
      info: (fields, msg) => log.push({ level: 'info', msg, fields: fields as Record<string, unknown> }),
    },
    ...(database ? { database } : {}),
  });
  // Fastify's own lines (a request that failed unexpectedly is logged there) join the same list.
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        const entry = JSON.parse(line) as { level: number; msg: string };
        if (entry.level >= 50) log.push({ level: 'error', msg: entry.msg, fields: entry });
      }
      callback();
    },
  });
  const server = await buildServer(app, { logger: { level: 'info', stream } });
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  const adminKey = (await app.apiKeys.create('outage test', ['admin'], 'test')).secret;
  return {
    app,
    url,
    adminKey,
    log,
    clearLog: () => {
      log.length = 0;
    },
    async close() {
      await server.close();
      await app.close();
    },
  };
}

export interface Answer {
  status: number;
  code: string | undefined;
  contentType: string | null;
  retryAfter: string | null;
  body: Record<string, unknown>;
}

/** One request; a request the server did not answer within `timeoutMs` rejects. */
export async function call(
  base: string,
  key: string | null,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<Answer> {
  const response = await fetch(base + path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  return {
    status: response.status,
    code: typeof parsed['code'] === 'string' ? parsed['code'] : undefined,
    contentType: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
    body: parsed,
  };
}

/** An active campaign with one public, unlimited code; returns the code. */
export async function publicCode(t: OutageApp, text: string): Promise<string> {
  const campaign = await call(t.url, t.adminKey, 'POST', '/v1/campaigns', {
    name: 'Outage',
    currency: 'USD',
    discount: { type: 'fixed_amount', amount_minor: 500 },
    status: 'active',
    starts_at: '2020-01-01T00:00:00Z',
  });
  if (campaign.status !== 201)
    throw new Error(`campaign: ${campaign.status} ${JSON.stringify(campaign.body)}`);
  const code = await call(t.url, t.adminKey, 'POST', `/v1/campaigns/${campaign.body['id']}/codes`, {
    code: text,
  });
  if (code.status !== 201) throw new Error(`code: ${code.status} ${JSON.stringify(code.body)}`);
  return text;
}

let sequence = 0;

/** A redemption with a key and a customer of its own. */
export function redeem(t: OutageApp, code: string, timeoutMs?: number): Promise<Answer & { key: string }> {
  sequence += 1;
  const key = `outage-${process.pid}-${sequence}-${Math.random().toString(36).slice(2, 8)}`;
  return call(
    t.url,
    t.adminKey,
    'POST',
    '/v1/redemptions',
    {
      code,
      customer: { id: `cus_${key}` },
      cart: { currency: 'USD', subtotal_minor: 10_000 },
    },
    { 'idempotency-key': key },
    timeoutMs,
  ).then((answer) => ({ ...answer, key }));
}
