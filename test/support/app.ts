/**
 * The real app and HTTP server on a test database, with one key per scope and fixture builders.
 * Requests go through Fastify's inject: the whole stack (auth, validation, services, SQL) runs.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Static } from 'typebox';
import { type App, type AppOptions, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { CampaignCreate } from '../../src/http/routes/campaigns.js';
import type { CodeSpec } from '../../src/http/routes/codes.js';
import type { CheckoutBody as CheckoutBodySchema } from '../../src/http/routes/redemptions.js';
import { buildServer } from '../../src/http/server.js';
import type { Clock } from '../../src/lib/clock.js';
import type { Database } from '../../src/store/schema.js';
import type { TestBackend } from './backends.js';

export interface TestApp {
  app: App;
  server: FastifyInstance;
  keys: { admin: string; marketing: string; checkout: string };
  call(method: InjectOptions['method'], url: string, options?: CallOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface CallOptions {
  key?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export const silentLogger = { error: () => {} };

/** A clock tests can set and move. */
export class TestClock implements Clock {
  constructor(private current = new Date('2026-06-01T12:00:00Z')) {}
  now(): Date {
    return new Date(this.current);
  }
  set(iso: string): void {
    this.current = new Date(iso);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export async function startTestApp(
  backend: TestBackend,
  options: { clock?: Clock; env?: Record<string, string>; webhooks?: AppOptions['webhooks'] } = {},
): Promise<TestApp> {
  const database = await backend.open<Database>();
  // Rate limits and lockouts are off by default here (huge limits) so that suites about other things
  // can send many requests; the defense suites set them explicitly. So is two-person approval (most
  // suites make uncapped active campaigns with one key); the approval suites turn it on.
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    APPROVALS: 'off',
    OUTBOX_POLL_MS: '50',
    RATE_LIMIT_PER_MINUTE: '100000',
    LOCKOUT_AFTER_FAILURES: '10000',
    RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '100000',
    LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '10000',
    ...options.env,
  });
  const app = await createApp({
    config,
    logger: silentLogger,
    database,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.webhooks ? { webhooks: options.webhooks } : {}),
  });
  const server = await buildServer(app, { logger: false });
  const keys = {
    admin: (await app.apiKeys.create('test admin', ['admin'], 'test')).secret,
    marketing: (await app.apiKeys.create('test marketing', ['marketing'], 'test')).secret,
    checkout: (await app.apiKeys.create('test checkout', ['checkout'], 'test')).secret,
  };
  return {
    app,
    server,
    keys,
    call(method, url, { key = keys.admin, body, headers = {} } = {}) {
      return server.inject({
        method,
        url,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
        ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }),
      });
    },
    async close() {
      await server.close();
      await app.close();
    },
  };
}

let sequence = 0;
/** A unique suffix for codes, ids and keys inside one test database. */
export function unique(prefix: string): string {
  sequence += 1;
  return `${prefix}${sequence}${Math.random().toString(36).slice(2, 8)}`.toUpperCase();
}

/** A campaign as POST /v1/campaigns takes it: the JSON a client sends (timestamps as text). */
export type CampaignCreateBody = Static<typeof CampaignCreate>;
/** A validation or redemption request as the checkout routes take it. */
export type CheckoutBody = Static<typeof CheckoutBodySchema>;
/** Overrides of a checkout body: the customer and the cart are merged field by field. */
export type CheckoutOverrides = Partial<Omit<CheckoutBody, 'code' | 'customer' | 'cart'>> & {
  customer?: Partial<CheckoutBody['customer']>;
  cart?: Partial<CheckoutBody['cart']>;
};
/** One chosen code as POST /v1/campaigns/{id}/codes takes it. */
export type CodeBody = Static<typeof CodeSpec>;

export function campaignBody(overrides: Partial<CampaignCreateBody> = {}): CampaignCreateBody {
  return {
    name: 'Summer sale',
    currency: 'USD',
    discount: { type: 'fixed_amount', amount_minor: 500 },
    status: 'active',
    starts_at: '2020-01-01T00:00:00Z',
    ...overrides,
  };
}

export function checkoutBody(code: string, overrides: CheckoutOverrides = {}): CheckoutBody {
  const { customer, cart, ...rest } = overrides;
  return {
    code,
    customer: { id: 'cus_1', ...customer },
    cart: { currency: 'USD', subtotal_minor: 10_000, ...cart },
    ...rest,
  };
}

/** Create an active campaign with one public code; returns the campaign id and the code. */
export async function campaignWithCode(
  t: TestApp,
  campaign: Partial<CampaignCreateBody> = {},
  code: Partial<CodeBody> = {},
): Promise<{ campaignId: string; code: string }> {
  const created = await t.call('POST', '/v1/campaigns', { body: campaignBody(campaign) });
  if (created.statusCode !== 201) throw new Error(`campaign: ${created.statusCode} ${created.body}`);
  const campaignId = created.json().id as string;
  const text = code.code ?? unique('PUB');
  const made = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { ...code, code: text } });
  if (made.statusCode !== 201) throw new Error(`code: ${made.statusCode} ${made.body}`);
  return { campaignId, code: text };
}

/** Status codes and refusal reasons of a batch of redemption responses, e.g. {201: 50, campaign_cap_reached: 150}. */
export function tally(responses: LightMyRequestResponse[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of responses) {
    let label: string;
    if (r.statusCode === 201) label = '201';
    else if (r.statusCode === 422 && r.json().code === 'redemption_refused') label = String(r.json().reason);
    else label = `${r.statusCode} ${r.body}`;
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}
