/**
 * The reconciliation schedule with two nodes on one database: whatever the timing, each interval gets
 * one run, by one node; an interval of 0 turns the schedule off.
 */
import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/store/connect.js';
import type { Database } from '../../src/store/schema.js';
import { silentLogger, TestClock } from '../support/app.js';
import { backends } from '../support/backends.js';

async function reports(db: Kysely<Database>) {
  const { rows } = await sql<{ status: string; triggered_by: string }>`
    SELECT status, triggered_by FROM reconciliations ORDER BY id`.execute(db);
  return rows;
}

const until = async (what: () => Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(backends.map((b) => [b.name, b] as const))(
  'reconciliation schedule on %s',
  (_name, backend) => {
    const opened: { close(): Promise<void> }[] = [];
    const apps: App[] = [];

    afterEach(async () => {
      for (const app of apps.splice(0).reverse()) await app.close();
      for (const database of opened.splice(0).reverse()) await database.close();
    });

    /** Two nodes on one fresh database, sharing a clock. */
    async function twoNodes(env: Record<string, string>, options: { relay: boolean; tickMs?: number }) {
      const first = await backend.open<Database>();
      opened.push(first);
      // PGlite serves one process: the second node shares its instance. PostgreSQL: a pool of its own.
      const second =
        first.databaseUrl !== undefined
          ? await openDatabase<Database>({ databaseUrl: first.databaseUrl, poolSize: 4 })
          : { db: first.db, backend: first.backend, close: async () => {} };
      opened.push(second);
      const clock = new TestClock();
      const config = loadConfig({
        LOG_LEVEL: 'silent',
        OUTBOX_POLL_MS: '50',
        RISK_DEFAULT_PACK: 'off',
        APPROVALS: 'off',
        ...env,
      });
      const node = (database: typeof second) =>
        createApp({
          config,
          logger: silentLogger,
          clock,
          relay: options.relay,
          reconciliationTickMs: options.tickMs ?? 60_000,
          database: { ...database, close: async () => {} },
        });
      const a = await node(first);
      apps.push(a);
      const b = await node(second);
      apps.push(b);
      return { a, b, clock, db: first.db };
    }

    it('two nodes asking at once start one run per interval', async () => {
      const { a, b, clock, db } = await twoNodes({ RECONCILIATION_INTERVAL_MINUTES: '60' }, { relay: false });
      const asks = await Promise.all([a, b, a, b, a, b].map((node) => node.reconciliation.runIfDue()));
      expect(asks.filter((r) => r.outcome === 'finished')).toHaveLength(1);
      expect(asks.every((r) => r.outcome !== 'finished' || r.reconciliation.status === 'ok')).toBe(true);
      expect(await reports(db)).toEqual([{ status: 'ok', triggered_by: 'schedule' }]);

      clock.advance(30 * 60_000);
      expect((await b.reconciliation.runIfDue()).outcome).toBe('not_due');

      clock.advance(31 * 60_000);
      const again = await Promise.all([b, a, b, a].map((node) => node.reconciliation.runIfDue()));
      expect(again.filter((r) => r.outcome === 'finished')).toHaveLength(1);
      expect(await reports(db)).toHaveLength(2);
    });

    it("runs on its nodes' timers, once for both", async () => {
      const { db } = await twoNodes({ RECONCILIATION_INTERVAL_MINUTES: '1440' }, { relay: true, tickMs: 15 });
      await until(async () => (await reports(db)).some((r) => r.status === 'ok'));
      // Many more ticks of both nodes: still the one run of this interval.
      await pause(400);
      expect(await reports(db)).toEqual([{ status: 'ok', triggered_by: 'schedule' }]);
    });

    it('runs nothing on a schedule when the interval is 0', async () => {
      const { a, db } = await twoNodes({ RECONCILIATION_INTERVAL_MINUTES: '0' }, { relay: true, tickMs: 15 });
      await pause(300);
      expect(await reports(db)).toEqual([]);
      // On demand still works.
      expect((await a.reconciliation.run('cli')).outcome).toBe('finished');
    });
  },
);
