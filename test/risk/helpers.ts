/**
 * Helpers for the risk suites: requests as a checkout backend and a fraud analyst make them, rules
 * scoped to one campaign (so the tests sharing an app never see each other's rules), and reads of the
 * tables a rollback must restore.
 */
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { expect } from 'vitest';
import { openDatabase } from '../../src/store/connect.js';
import { type CheckoutBody, checkoutBody, type TestApp, unique } from '../support/app.js';
import type { TestBackend } from '../support/backends.js';

export const n = (v: unknown): number => Number(v ?? 0) + 0;

export interface DecisionJson {
  id: string;
  action: 'allow' | 'review' | 'challenge' | 'block';
  because: string[];
  rules: {
    id: string;
    name: string;
    action: string;
    mode: 'enforce' | 'shadow';
    reason: string;
    result: 'fired' | 'unavailable' | 'error';
    detail?: string;
    features: Record<string, number>;
  }[];
  features: Record<string, number>;
  unavailable_features: string[];
  allow_listed: boolean;
  challenge_satisfied: boolean;
  step_up: string | null;
}

export async function fraudKey(t: TestApp): Promise<string> {
  return (await t.app.apiKeys.create('fraud analyst', ['fraud'], 'test')).secret;
}

export interface AttemptOptions {
  context?: Record<string, unknown>;
  subtotal?: number;
  stepUp?: CheckoutBody['step_up'];
  idempotencyKey?: string;
  orderId?: string;
}

function body(code: string, customerId: string, o: AttemptOptions) {
  return checkoutBody(code, {
    customer: { id: customerId },
    ...(o.subtotal !== undefined ? { cart: { subtotal_minor: o.subtotal } } : {}),
    ...(o.context ? { context: o.context } : {}),
    ...(o.stepUp ? { step_up: o.stepUp } : {}),
  });
}

/**
 * A checkout backend redeeming (a fresh order and Idempotency-Key unless given); waits until the
 * attempt is recorded into the feature counters, as a later request on a real system would find it.
 */
export async function redeem(
  t: TestApp,
  code: string,
  customerId: string,
  o: AttemptOptions = {},
): Promise<LightMyRequestResponse> {
  const r = await t.call('POST', '/v1/redemptions', {
    key: t.keys.checkout,
    body: { ...body(code, customerId, o), order_id: o.orderId ?? `ord_${unique('')}` },
    headers: { 'idempotency-key': o.idempotencyKey ?? unique('IDEM-') },
  });
  await t.app.risk.settled();
  return r;
}

/** A checkout backend validating; waits until the attempt is recorded. */
export async function validate(
  t: TestApp,
  code: string,
  customerId: string,
  o: AttemptOptions = {},
): Promise<LightMyRequestResponse> {
  const r = await t.call('POST', '/v1/validations', {
    key: t.keys.checkout,
    body: body(code, customerId, o),
  });
  await t.app.risk.settled();
  return r;
}

/** The decision of a 201 redemption, a 422 refusal, a 428 challenge or a trusted validation. */
export function decisionOf(r: LightMyRequestResponse): DecisionJson {
  const decision = r.json().decision as DecisionJson | undefined;
  if (!decision) throw new Error(`no decision in ${r.statusCode} ${r.body}`);
  return decision;
}

/** A 201 with its decision's action. */
export function expectRedeemed(r: LightMyRequestResponse, action: DecisionJson['action'] = 'allow') {
  expect(r.statusCode, r.body).toBe(201);
  expect(decisionOf(r).action, r.body).toBe(action);
  return r.json() as { id: string; review_status: string | null; decision: DecisionJson; status: string };
}

export function expectBlocked(r: LightMyRequestResponse): DecisionJson {
  expect(r.statusCode, r.body).toBe(422);
  expect(r.json()).toMatchObject({ code: 'redemption_refused', reason: 'blocked_by_rule' });
  const decision = decisionOf(r);
  expect(decision.action).toBe('block');
  return decision;
}

export function expectChallenged(r: LightMyRequestResponse): { token: string; expires_at: string } {
  expect(r.statusCode, r.body).toBe(428);
  expect(r.json().code).toBe('challenge_required');
  expect(decisionOf(r).action).toBe('challenge');
  return r.json().challenge as { token: string; expires_at: string };
}

export interface RuleBody {
  name?: string;
  expression: string;
  action: DecisionJson['action'];
  reason?: string;
  mode?: 'enforce' | 'shadow';
  campaign_id?: string | null;
  expires_at?: string | null;
  enabled?: boolean;
  description?: string;
}

/** Create a rule (as the fraud analyst); returns its id. */
export async function createRule(t: TestApp, key: string, rule: RuleBody): Promise<string> {
  const r = await t.call('POST', '/v1/rules', {
    key,
    body: { name: `rule ${rule.action}`, reason: `reason of ${rule.action}`, mode: 'enforce', ...rule },
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json().id as string;
}

/** The counters a rollback must restore, for one campaign (and one of its customers). */
export async function counters(t: TestApp, campaignId: string, customerId?: string) {
  const campaign = await t.app.db
    .selectFrom('campaigns')
    .select(['redemptions_used', 'spent_minor'])
    .where('id', '=', campaignId)
    .executeTakeFirstOrThrow();
  const codes = await t.app.db
    .selectFrom('codes')
    .select(['uses'])
    .where('campaign_id', '=', campaignId)
    .execute();
  const usage = customerId
    ? await t.app.db
        .selectFrom('customer_usage')
        .select('uses')
        .where('campaign_id', '=', campaignId)
        .where('customer_id', '=', customerId)
        .executeTakeFirst()
    : undefined;
  return {
    redemptionsUsed: n(campaign.redemptions_used),
    spentMinor: n(campaign.spent_minor),
    codeUses: codes.reduce((sum, c) => sum + n(c.uses), 0),
    customerUses: n(usage?.uses),
  };
}

/** Ledger entries of one redemption, as `entry_type:account:amount`, sorted. */
export async function ledgerOf(t: TestApp, redemptionId: string): Promise<string[]> {
  const { rows } = await sql<{ entry_type: string; account: string; amount_minor: unknown }>`
    SELECT entry_type, account, amount_minor FROM ledger_entries WHERE redemption_id = ${redemptionId}`.execute(
    t.app.db,
  );
  return rows.map((r) => `${r.entry_type}:${r.account}:${n(r.amount_minor)}`).sort();
}

/** Outbox event types of one aggregate, sorted. */
export async function eventsOf(t: TestApp, aggregateId: string): Promise<string[]> {
  const { rows } = await sql<{ type: string }>`
    SELECT type FROM outbox WHERE aggregate_id = ${aggregateId}`.execute(t.app.db);
  return rows.map((r) => r.type).sort();
}

export const ruleIn = (d: DecisionJson, id: string) => d.rules.find((r) => r.id === id);

let addressSequence = 0;
/** A client IPv4 address no other test in this process uses. */
export function nextIPv4(): string {
  addressSequence += 1;
  return `10.77.${(addressSequence >> 8) & 255}.${addressSequence & 255}`;
}

/** A code nobody issued (a failed attempt). */
export const unknownCode = () => unique('NOPE');

export async function statsOf(t: TestApp, key: string) {
  const r = await t.call('GET', '/v1/risk/stats', { key });
  expect(r.statusCode, r.body).toBe(200);
  return r.json() as {
    decisions: Record<'allow' | 'review' | 'challenge' | 'block', number>;
    feature_errors: number;
    fail_open_reviews: number;
    rule_errors: number;
    record_errors: number;
    pending_reviews: number;
  };
}

/**
 * One test database of `backend` that several apps (nodes) open: `node` is the backend to start them on.
 * On PostgreSQL each node gets a pool of its own; PGlite belongs to one process, so there the nodes
 * share it. Closing a node leaves the database; `close` drops it.
 */
export async function sharedDatabase(
  backend: TestBackend,
): Promise<{ node: TestBackend; close(): Promise<void> }> {
  const opened = await backend.open();
  const node: TestBackend = {
    name: backend.name,
    open: (async () =>
      opened.databaseUrl
        ? openDatabase({ databaseUrl: opened.databaseUrl, poolSize: 4 })
        : { db: opened.db, backend: opened.backend, close: async () => {} }) as TestBackend['open'],
  };
  return { node, close: () => opened.close() };
}
