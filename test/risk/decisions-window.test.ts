/**
 * `GET /v1/decisions` lists the stored decisions of `[from, to)`; a caller that leaves out either bound
 * gets the documented default: the period ends now and starts 24 hours before its end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';
import { fraudKey, redeem } from './helpers.js';

const HOUR = 3_600_000;
const NOW = '2026-06-10T12:00:00.000Z';

describe.each(backends.map((b) => [b.name, b] as const))('the decisions period on %s', (_name, backend) => {
  let t: TestApp;
  let fraud: string;
  const clock = new TestClock(new Date(NOW));
  /** Decision ids by how many hours before NOW they were taken. */
  const made = new Map<number, string>();

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    fraud = await fraudKey(t);
    const { code } = await campaignWithCode(t, {}, { max_uses: 100 });
    for (const hoursAgo of [30, 25, 23, 1]) {
      clock.set(new Date(Date.parse(NOW) - hoursAgo * HOUR).toISOString());
      const r = await redeem(t, code, unique('CUS_WINDOW_'));
      expect(r.statusCode, r.body).toBe(201);
      made.set(hoursAgo, r.json().decision.id as string);
    }
    clock.set(NOW);
  });
  afterAll(async () => t?.close());

  async function listed(query: string): Promise<string[]> {
    const r = await t.call('GET', `/v1/decisions${query}`, { key: fraud });
    expect(r.statusCode, r.body).toBe(200);
    return (r.json().data as { id: string }[]).map((d) => d.id);
  }

  const at = (hoursAgo: number) =>
    encodeURIComponent(new Date(Date.parse(NOW) - hoursAgo * HOUR).toISOString());

  it('without from and to lists the last 24 hours, oldest first', async () => {
    expect(await listed('')).toEqual([made.get(23), made.get(1)]);
  });

  it('without from starts 24 hours before the given to', async () => {
    expect(await listed(`?to=${at(2)}`)).toEqual([made.get(25), made.get(23)]);
  });

  it('without to ends now', async () => {
    expect(await listed(`?from=${at(31)}`)).toEqual([made.get(30), made.get(25), made.get(23), made.get(1)]);
  });

  it('with both lists exactly [from, to)', async () => {
    expect(await listed(`?from=${at(30)}&to=${at(1)}`)).toEqual([made.get(30), made.get(25), made.get(23)]);
  });

  it('moves with the clock: a day later the same request lists none of them', async () => {
    clock.set(new Date(Date.parse(NOW) + 24 * HOUR).toISOString());
    try {
      expect(await listed('')).toEqual([]);
    } finally {
      clock.set(NOW);
    }
  });
});
