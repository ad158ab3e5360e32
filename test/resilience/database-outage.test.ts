/**
 * PostgreSQL going away under a running server: stopped (immediate and fast, with redemptions in
 * flight), frozen (a hung server or a partition, through a proxy that stops forwarding), then back.
 * The server must stay up, answer 503 `database_unavailable` with Retry-After while the database is
 * away (never 500, never hang), serve again by itself when it returns, log the outage once, and lose
 * nothing it acknowledged.
 *
 * The suite runs its own PostgreSQL on port 25432 (and a proxy on 25433): it never touches the shared one.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresInstance, postgresBin, startPostgres } from '../support/postgres-instance.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import {
  type Answer,
  call,
  type OutageApp,
  publicCode,
  redeem,
  required,
  startOutageApp,
} from './outage-app.js';

const PG_PORT = 25432;
const PROXY_PORT = 25433;

/** Timeouts small enough that a frozen database is noticed well within a test's patience. */
const TIMEOUTS = {
  DATABASE_STATEMENT_TIMEOUT_MS: '1000',
  DATABASE_QUERY_TIMEOUT_MS: '1500',
  DATABASE_CONNECT_TIMEOUT_MS: '1000',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Redemption loops that run until stopped, keeping every answer with the time it arrived. */
function load(t: OutageApp, code: string, clients: number) {
  const answers: (Answer & { key: string; at: number })[] = [];
  const failures: unknown[] = [];
  let running = true;
  const lanes = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const answer = await redeem(t, code);
        answers.push({ ...answer, at: Date.now() });
      } catch (err) {
        failures.push(err);
        await sleep(50);
      }
    }
  });
  return {
    answers,
    failures,
    async stop() {
      running = false;
      await Promise.all(lanes);
    },
  };
}

async function until<T>(what: string, probe: () => Promise<T | null>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await probe().catch(() => null);
    if (found !== null) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

const run = required(postgresBin() !== null, 'PostgreSQL binaries (initdb, pg_ctl)');

describe.runIf(run)('a database outage under a running server', () => {
  let pg: PostgresInstance;

  beforeAll(async () => {
    pg = await startPostgres(PG_PORT);
  });
  afterAll(async () => {
    await pg?.destroy();
  });

  describe.each(['immediate', 'fast'] as const)(
    'PostgreSQL stopped (-m %s) with redemptions in flight',
    (mode) => {
      let t: OutageApp;
      beforeAll(async () => {
        t = await startOutageApp({ DATABASE_URL: pg.url, DATABASE_POOL_SIZE: '8', ...TIMEOUTS });
      });
      afterAll(async () => {
        await t?.close();
      });

      it('stays up, answers only 503 database_unavailable with Retry-After meanwhile, serves again, and keeps every acknowledged redemption', async () => {
        const code = await publicCode(t, `OUTAGE${mode.toUpperCase()}`);
        t.clearLog();
        const traffic = load(t, code, 16);
        try {
          await until('a redemption under load', async () =>
            traffic.answers.some((a) => a.status === 201) ? true : null,
          );
          await pg.stop(mode);
          const stoppedAt = Date.now();
          await until('a 503 while the database is down', async () =>
            traffic.answers.some((a) => a.at > stoppedAt && a.status === 503) ? true : null,
          );
          await sleep(1_000);
          await pg.start();
          const startedAt = Date.now();
          await until('a redemption after the database returned', async () =>
            traffic.answers.some((a) => a.at > startedAt && a.status === 201) ? true : null,
          );
        } finally {
          await traffic.stop();
          await pg.start();
        }

        expect(traffic.failures).toEqual([]);
        const statuses = new Set(traffic.answers.map((a) => a.status));
        expect([...statuses].sort()).toEqual([201, 503]);
        for (const refused of traffic.answers.filter((a) => a.status !== 201)) {
          expect(refused.code).toBe('database_unavailable');
          expect(refused.contentType).toMatch(/^application\/problem\+json/);
          expect(refused.retryAfter).toBe('1');
        }

        // Every redemption the server acknowledged is in the database, with its ledger entry and event.
        const acknowledged = traffic.answers
          .filter((a) => a.status === 201)
          .map((a) => a.body['id'] as string);
        const stored = await t.app.db
          .selectFrom('redemptions as r')
          .select([
            'r.id',
            sql<number>`(SELECT count(*) FROM ledger_entries l WHERE l.redemption_id = r.id)`.as('ledger'),
            sql<number>`(SELECT count(*) FROM outbox o WHERE o.aggregate_id = r.id AND o.type = 'redemption.created')`.as(
              'events',
            ),
          ])
          .where('r.id', 'in', acknowledged)
          .execute();
        expect(stored.length).toBe(acknowledged.length);
        for (const row of stored) {
          expect(row.ledger).toBeGreaterThan(0);
          expect(row.events).toBe(1);
        }

        // The outage is in the log once as it began and once as it ended, not once per failed request.
        const errors = t.log.filter((l) => l.level === 'error');
        expect(errors.map((l) => l.msg)).toEqual(['database is down']);
        expect(t.log.filter((l) => l.msg === 'database is back up').length).toBe(1);
        expect(t.app.dependencies.state()).toContainEqual(
          expect.objectContaining({ dependency: 'database', up: true }),
        );
      });
    },
  );

  describe('PostgreSQL frozen (nothing answers, connections stay open)', () => {
    let proxy: TcpProxy;
    let t: OutageApp;
    beforeAll(async () => {
      proxy = await startTcpProxy({ port: PG_PORT }, PROXY_PORT);
      t = await startOutageApp({
        DATABASE_URL: `postgres://postgres@127.0.0.1:${PROXY_PORT}/postgres`,
        DATABASE_POOL_SIZE: '8',
        ...TIMEOUTS,
      });
    });
    afterAll(async () => {
      proxy?.thaw();
      await t?.close();
      await proxy?.close();
    });

    it('answers 503 instead of waiting for the database, /readyz included, and recovers when it answers again', async () => {
      const code = await publicCode(t, 'FROZEN');
      expect((await call(t.url, null, 'GET', '/readyz')).status).toBe(200);
      expect((await redeem(t, code)).status).toBe(201);

      proxy.freeze();
      try {
        // The freeze lasts longer than any of these may take: a server that waits for the database
        // leaves them unanswered.
        const patience = 8_000;
        const [ready, redeemed, listed] = await Promise.all([
          call(t.url, null, 'GET', '/readyz', undefined, {}, patience),
          redeem(t, code, patience),
          call(t.url, t.adminKey, 'GET', '/v1/campaigns', undefined, {}, patience),
        ]);
        expect(ready.status).toBe(503);
        expect(ready.code).toBe('not_ready');
        for (const answer of [redeemed, listed]) {
          expect(answer.status).toBe(503);
          expect(answer.code).toBe('database_unavailable');
          expect(answer.retryAfter).toBe('1');
        }
      } finally {
        proxy.thaw();
      }

      // The connections stuck behind the freeze were discarded: new requests get fresh ones.
      await until('readiness after the thaw', async () =>
        (await call(t.url, null, 'GET', '/readyz')).status === 200 ? true : null,
      );
      const after = await Promise.all(Array.from({ length: 16 }, () => redeem(t, code)));
      expect(after.map((a) => a.status)).toEqual(Array(16).fill(201));
    });

    it('a dropped connection (a reset network) is replaced, and the server keeps serving', async () => {
      const code = await publicCode(t, 'DROPPED');
      const traffic = load(t, code, 8);
      await until('redemptions under load', async () => (traffic.answers.length > 20 ? true : null));
      proxy.drop();
      const droppedAt = Date.now();
      await until('a redemption after the drop', async () =>
        traffic.answers.some((a) => a.at > droppedAt + 200 && a.status === 201) ? true : null,
      );
      await traffic.stop();
      expect(traffic.failures).toEqual([]);
      for (const a of traffic.answers.filter((x) => x.status !== 201))
        expect(a.code).toBe('database_unavailable');
    });
  });
});
