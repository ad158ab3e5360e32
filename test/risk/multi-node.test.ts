/**
 * Two API nodes on one database: a rule created, changed or deleted through one node takes effect on
 * the other within seconds (each node re-reads its rule set when the set's stamp changes; the docs
 * promise "about two seconds"). On PostgreSQL, each node with a pool of its own (PGlite only when no
 * PostgreSQL server is configured: one process owns it, so there the two nodes share it).
 *
 * The nodes share one frozen clock: a change is stamped with a time no later than the newest change
 * already stored, as it is on a node whose clock runs behind another's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { describe, it } from 'vitest';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends, type TestBackend } from '../support/backends.js';
import { createRule, fraudKey, redeem, sharedDatabase } from './helpers.js';

/** Long enough for a node to notice a change (refresh every 2 s), short enough for a test. */
const PROPAGATION_MS = 6_000;

/** Polls `attempt` until `done` holds for its answer, or the time is up; returns the last answer. */
async function eventually(
  attempt: () => Promise<LightMyRequestResponse>,
  done: (r: LightMyRequestResponse) => boolean,
): Promise<LightMyRequestResponse> {
  const deadline = Date.now() + PROPAGATION_MS;
  for (;;) {
    const r = await attempt();
    if (done(r) || Date.now() > deadline) return r;
    await sleep(200);
  }
}

const blocked = (r: LightMyRequestResponse) => r.statusCode === 422 && r.json().reason === 'blocked_by_rule';

/**
 * Several nodes on one database is a PostgreSQL deployment (PGlite belongs to one process); without a
 * PostgreSQL server the test runs on two nodes sharing the embedded database instead.
 */
const postgres = backends.filter((b) => b.name === 'postgres');
const nodeBackends = postgres.length > 0 ? postgres : backends;

/** Two nodes on one database of `backend`, sharing `clock`; closed (and the database dropped) by `close`. */
async function twoNodes(backend: TestBackend, clock: TestClock) {
  const database = await sharedDatabase(backend);
  const started: TestApp[] = [];
  const close = async () => {
    try {
      for (const app of started) await app.close();
    } finally {
      await database.close();
    }
  };
  try {
    started.push(await startTestApp(database.node, { clock }));
    started.push(await startTestApp(database.node, { clock }));
  } catch (err) {
    await close();
    throw err;
  }
  const [a, b] = started as [TestApp, TestApp];
  return { a, b, close };
}

// The backends run side by side: most of each test is waiting for the other node's refresh. Inside one
// test the steps are sequential, so no other change can make node B re-read its rules by chance.
describe.concurrent('rules on two nodes', () => {
  it.concurrent.for(nodeBackends.map((b) => [b.name, b] as const))(
    '%s: a rule created, disabled, re-enabled and deleted on node A is applied accordingly on node B',
    async ([, backend], { expect, onTestFinished }) => {
      const clock = new TestClock(new Date('2026-06-01T12:00:00Z'));
      const { a, b, close } = await twoNodes(backend, clock);
      onTestFinished(close);
      const fraud = await fraudKey(a);
      const { campaignId, code } = await campaignWithCode(a);
      const onB = () => redeem(b, code, unique('CUS_NODE_'));
      const served = (r: LightMyRequestResponse) => r.statusCode === 201;
      expect((await onB()).statusCode).toBe(201);

      const rule = await createRule(a, fraud, {
        expression: 'true',
        action: 'block',
        campaign_id: campaignId,
      });
      expect(blocked(await redeem(a, code, unique('CUS_NODE_')))).toBe(true);
      expect((await eventually(onB, blocked)).statusCode, 'node B applies the new rule').toBe(422);

      const patch = async (enabled: boolean) => {
        const r = await a.call('PATCH', `/v1/rules/${rule}`, { key: fraud, body: { enabled } });
        expect(r.statusCode, r.body).toBe(200);
      };
      await patch(false);
      expect((await eventually(onB, served)).statusCode, 'node B stops applying the disabled rule').toBe(201);
      await patch(true);
      expect((await eventually(onB, blocked)).statusCode, 'node B applies the re-enabled rule').toBe(422);

      const deleted = await a.call('DELETE', `/v1/rules/${rule}`, { key: fraud });
      expect(deleted.statusCode, deleted.body).toBe(204);
      expect((await redeem(a, code, unique('CUS_NODE_'))).statusCode).toBe(201);
      const after = await eventually(onB, served);
      expect(after.statusCode, `node B still applies the deleted rule: ${after.body}`).toBe(201);
    },
  );
});
