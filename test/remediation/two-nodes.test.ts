/**
 * Two API nodes on one PostgreSQL and one NATS JetStream stream: an alert committed on node A is
 * remediated once for the cluster (the nodes share the work queue), node B enforces the remediation
 * within a poll, and a lift on node B ends it on node A too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvents } from '../../src/store/outbox.js';
import { sharedDatabase } from '../risk/helpers.js';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { deleteStream, testNatsUrl, uniqueStream } from '../support/nats.js';

const postgres = backends.find((b) => b.name === 'postgres');

async function eventually<T>(attempt: () => Promise<T>, done: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await attempt();
    if (done(v) || Date.now() > deadline) return v;
    await sleep(100);
  }
}

describe.skipIf(!postgres || !testNatsUrl)('remediation on two nodes (PostgreSQL, JetStream)', () => {
  let a: TestApp;
  let b: TestApp;
  let closeDb: () => Promise<void>;
  const names = uniqueStream('remedy');

  beforeAll(async () => {
    const database = await sharedDatabase(postgres as NonNullable<typeof postgres>);
    closeDb = database.close;
    const env = { NATS_URL: testNatsUrl as string, ...names };
    a = await startTestApp(database.node, { env });
    b = await startTestApp(database.node, { env });
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await closeDb?.();
    await deleteStream(testNatsUrl as string, names.NATS_STREAM);
  });

  it('acts once per alert for the cluster; every node enforces it and a lift on one ends it on all', async () => {
    const { campaignId, code } = await campaignWithCode(a);
    const codes = await a.call('GET', `/v1/campaigns/${campaignId}/codes`);
    const codeId = codes.json().data[0].id as string;
    const guestOn = (node: TestApp) =>
      node.call('POST', '/v1/redemptions', {
        key: node.keys.checkout,
        body: checkoutBody(code, { customer: { id: unique('cus_') } }),
        headers: { 'idempotency-key': unique('two-') },
      });
    expect((await guestOn(b)).statusCode).toBe(201);

    const alertId = `alr_${unique('')}`;
    const payload = {
      alert_id: alertId,
      kind: 'redemption_spike',
      scope: { type: 'code', id: codeId, campaign_id: campaignId },
      severity: 'page',
      observed: 80,
      expected: 3,
      interval_seconds: 60,
      triggered_by_event_id: null,
      triggered_at: new Date().toISOString(),
      raised_at: new Date().toISOString(),
    };
    await a.app.db
      .transaction()
      .execute((trx) =>
        appendEvents(trx, [{ type: 'alert.raised', aggregateId: alertId, payload }], new Date()),
      );
    a.app.relay.notify();

    const list = () =>
      a.call('GET', `/v1/remediations?alert_id=${alertId}`).then((r) => r.json().data as { id: string }[]);
    const applied = await eventually(list, (rows) => rows.length >= 2);
    expect(applied).toHaveLength(2);

    // Node B did not apply it (node A or B did, once): it reads it from the database within a poll.
    const challenged = await eventually(
      () => guestOn(b),
      (r: LightMyRequestResponse) => r.statusCode === 428,
    );
    expect(challenged.statusCode).toBe(428);

    // The same alert delivered again (another event id) on node B adds nothing.
    await b.app.bus.publish({
      id: `evt_${unique('').padEnd(26, '0').slice(0, 26)}`,
      type: 'alert.raised',
      aggregateId: alertId,
      payload,
      createdAt: new Date(),
    });
    await sleep(500);
    expect(await list()).toHaveLength(2);
    const audit = await a.call('GET', '/v1/audit?action=remediation.applied&limit=200');
    const mine = audit
      .json()
      .data.filter((e: { resource: string }) => applied.some((r) => r.id === e.resource));
    expect(mine).toHaveLength(2);

    for (const r of applied) {
      const lifted = await b.call('POST', `/v1/remediations/${r.id}/lift`, {
        body: { reason: 'genuine surge' },
      });
      expect(lifted.statusCode, lifted.body).toBe(200);
    }
    const served = await eventually(
      () => guestOn(a),
      (r: LightMyRequestResponse) => r.statusCode === 201,
    );
    expect(served.statusCode).toBe(201);
  });
});
