/**
 * GET /metrics: every metric of the catalogue is exported in a form promtool accepts, the database
 * gauges read what the database holds, campaign labels are bounded, and only a caller with the token
 * (or, without one, a direct loopback connection) may scrape.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics/catalogue.js';
import { campaignBody, campaignWithCode, startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { samples } from '../support/metrics.js';

const PROMTOOL = process.env['PROMTOOL'] || 'promtool';
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());
const hasPromtool = await promisify(execFile)(PROMTOOL, ['--version']).then(
  () => true,
  () => false,
);
if (!hasPromtool && inCi) throw new Error(`promtool is required under CI (${PROMTOOL} not found)`);

describe.each(backends.map((b) => [b.name, b] as const))('GET /metrics on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend, {
      env: { METRICS_CAMPAIGN_LABEL_LIMIT: '2', METRICS_DATABASE_READING_MS: '0' },
    });
  });
  afterAll(async () => t?.close());

  const scrape = async () => {
    const res = await t.call('GET', '/metrics', { key: null });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.body;
  };

  it('exports every metric of the catalogue, and Node process metrics', async () => {
    const text = await scrape();
    for (const def of METRICS) expect(text, def.name).toContain(`# TYPE ${def.name} ${def.type}`);
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
  });

  it.runIf(hasPromtool)('passes promtool check metrics', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-metrics-'));
    try {
      const file = path.join(dir, 'metrics.txt');
      await writeFile(file, await scrape());
      const { stdout, stderr } = await promisify(execFile)('sh', [
        '-c',
        `${PROMTOOL} check metrics < ${file}`,
      ]);
      expect(`${stdout}${stderr}`.trim()).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts requests per route template, never with the path parameters', async () => {
    const { campaignId } = await campaignWithCode(t);
    await t.call('GET', `/v1/campaigns/${campaignId}`);
    const text = await scrape();
    const series = samples(text, 'promoguard_http_requests_total');
    expect(
      series.some((s) => s.labels.includes('route="/v1/campaigns/:id"') && s.labels.includes('status="200"')),
    ).toBe(true);
    expect(series.some((s) => s.labels.includes(campaignId))).toBe(false);
  });

  it('reads the database gauges from the database: campaigns by status and the outbox backlog', async () => {
    await t.call('POST', '/v1/campaigns', { body: campaignBody({ status: 'draft' }) });
    const text = await scrape();
    const drafts = samples(text, 'promoguard_campaigns').find((s) => s.labels.includes('status="draft"'));
    expect(drafts?.value).toBeGreaterThanOrEqual(1);
    expect(samples(text, 'promoguard_outbox_backlog_events')).toHaveLength(1);
    expect(samples(text, 'promoguard_review_queue_pending')[0]?.value).toBe(0);
  });

  it('reports the dependencies it watches as up', async () => {
    const up = samples(await scrape(), 'promoguard_dependency_up');
    expect(up.find((s) => s.labels.includes('dependency="database"'))?.value).toBe(1);
  });

  it('refuses a scrape that came through a proxy when no token is set', async () => {
    const res = await t.call('GET', '/metrics', { key: null, headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  let t: TestApp;
  const token = 'metrics-token-0123456789abcdef0123456789';
  beforeAll(async () => {
    t = await startTestApp(backends[0] as (typeof backends)[number], { env: { METRICS_TOKEN: token } });
  });
  afterAll(async () => t?.close());

  it('needs the token, from anywhere', async () => {
    const none = await t.call('GET', '/metrics', { key: null });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: 'unauthorized' });
    const wrong = await t.call('GET', '/metrics', { key: `${token}x` });
    expect(wrong.statusCode).toBe(401);
    const right = await t.call('GET', '/metrics', {
      key: token,
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(right.statusCode).toBe(200);
  });
});
