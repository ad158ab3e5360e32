/**
 * What the console draws from: one campaign over time (GET /v1/campaigns/{id}/series) and the
 * exported metrics as JSON (GET /v1/metrics/summary), on every store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))('campaign series on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date('2026-06-01T10:00:00Z'));
  let fraudKey: string;

  beforeAll(async () => {
    t = await startTestApp(backend, { clock });
    fraudKey = (await t.app.apiKeys.create('fraud', ['fraud'], 'test')).secret;
  });
  afterAll(async () => t?.close());

  const redeem = (code: string) =>
    t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('idem') },
      body: checkoutBody(code, { customer: { id: unique('cus') } }),
    });

  it('buckets redemptions, their discount in force, rollbacks, and starts the burn from what was spent before', async () => {
    const { campaignId, code } = await campaignWithCode(t, { budget_minor: 100_000 }, { max_uses: 100 });
    clock.set('2026-06-01T10:00:10Z');
    expect((await redeem(code)).statusCode).toBe(201);
    clock.set('2026-06-01T10:05:10Z');
    const second = await redeem(code);
    const third = await redeem(code);
    expect([second.statusCode, third.statusCode]).toEqual([201, 201]);
    clock.set('2026-06-01T10:07:30Z');
    const undone = await t.call('POST', `/v1/redemptions/${third.json().id}/rollback`, {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('idem') },
      body: {},
    });
    expect(undone.statusCode, undone.body).toBe(200);

    const res = await t.call(
      'GET',
      `/v1/campaigns/${campaignId}/series?from=2026-06-01T10:05:00Z&to=2026-06-01T11:00:00Z&bucket=minute`,
      { key: fraudKey },
    );
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      campaign_id: campaignId,
      currency: 'USD',
      budget_minor: 100_000,
      bucket: 'minute',
      spent_before_minor: 500,
    });
    expect(body.points).toEqual([
      {
        at: '2026-06-01T10:05:00.000Z',
        redemptions: 2,
        spent_minor: 500,
        rollbacks: 0,
        new_accounts: 0,
        account_age_known: 0,
        risk_blocked: 0,
        risk_challenged: 0,
      },
      {
        at: '2026-06-01T10:07:00.000Z',
        redemptions: 0,
        spent_minor: 0,
        rollbacks: 1,
        new_accounts: 0,
        account_age_known: 0,
        risk_blocked: 0,
        risk_challenged: 0,
      },
    ]);

    const hourly = await t.call(
      'GET',
      `/v1/campaigns/${campaignId}/series?from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z`,
    );
    expect(hourly.json().points).toEqual([
      expect.objectContaining({
        at: '2026-06-01T10:00:00.000Z',
        redemptions: 3,
        spent_minor: 1000,
        rollbacks: 1,
      }),
    ]);
  });

  it('refuses a window of too many buckets, an unknown campaign, and a checkout key', async () => {
    const { campaignId } = await campaignWithCode(t);
    const wide = await t.call(
      'GET',
      `/v1/campaigns/${campaignId}/series?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z&bucket=minute`,
    );
    expect(wide.statusCode).toBe(400);
    expect(wide.json().code).toBe('validation_failed');
    const backwards = await t.call(
      'GET',
      `/v1/campaigns/${campaignId}/series?from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z`,
    );
    expect(backwards.statusCode).toBe(400);
    const unknown = await t.call('GET', '/v1/campaigns/cmp_01J00000000000000000000000/series');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('campaign_not_found');
    const checkout = await t.call('GET', `/v1/campaigns/${campaignId}/series`, { key: t.keys.checkout });
    expect(checkout.statusCode).toBe(403);
  });

  it('answers the metrics as JSON, one campaign’s series when asked', async () => {
    const first = await campaignWithCode(t, {}, { max_uses: 10 });
    const other = await campaignWithCode(t, {}, { max_uses: 10 });
    expect((await redeem(first.code)).statusCode).toBe(201);
    expect((await redeem(other.code)).statusCode).toBe(201);

    const all = await t.call('GET', '/v1/metrics/summary', { key: fraudKey });
    expect(all.statusCode, all.body).toBe(200);
    expect(all.headers['cache-control']).toBe('no-store');
    const redemptions = (body: {
      metrics: { name: string; samples: { labels: Record<string, string> }[] }[];
    }) => body.metrics.find((m) => m.name === 'promoguard_redemptions_total')?.samples ?? [];
    const campaigns = (body: Parameters<typeof redemptions>[0]) =>
      new Set(redemptions(body).map((s) => s.labels.campaign_id));
    expect([...campaigns(all.json())]).toEqual(expect.arrayContaining([first.campaignId, other.campaignId]));
    expect(all.json().metrics.every((m: { name: string }) => m.name.startsWith('promoguard_'))).toBe(true);
    const latency = all
      .json()
      .metrics.find((m: { name: string }) => m.name === 'promoguard_redemption_duration_seconds');
    expect(
      latency.samples.some(
        (s: { series?: string }) => s.series === 'promoguard_redemption_duration_seconds_bucket',
      ),
    ).toBe(true);

    const one = await t.call('GET', `/v1/metrics/summary?campaign_id=${first.campaignId}`, { key: fraudKey });
    expect([...campaigns(one.json())]).toEqual([first.campaignId]);
    const redeemed = redemptions(one.json()).find((s) => s.labels.outcome === 'redeemed') as unknown as {
      value: number;
    };
    expect(redeemed.value).toBe(1);

    expect((await t.call('GET', '/v1/metrics/summary', { key: t.keys.checkout })).statusCode).toBe(403);
    expect((await t.call('GET', '/v1/metrics/summary', { key: null })).statusCode).toBe(401);
  });
});
