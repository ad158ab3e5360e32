/**
 * A real Prometheus (Debian's `prometheus` package, or PROMETHEUS=path) scrapes a server under a short
 * load, and an M1 query (redemptions by campaign) and an M3 query (validation latency quantile) read
 * back through Prometheus's HTTP API what the service counted. Under CI=true the binary is required.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const PROMETHEUS = process.env['PROMETHEUS'] || 'prometheus';
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());
const hasPrometheus = (() => {
  try {
    execFileSync(PROMETHEUS, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasPrometheus && inCi) throw new Error(`prometheus is required under CI (${PROMETHEUS} not found)`);
if (!hasPrometheus) console.warn(`prometheus not found (${PROMETHEUS}): the scrape test is skipped`);

const SERVICE_PORT = 21901;
const PROMETHEUS_PORT = 21902;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(expr: string): Promise<Sample[]> {
  const url = `http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: { result: Sample[] } };
  if (body.status !== 'success') throw new Error(`query failed: ${JSON.stringify(body)}`);
  return body.data.result;
}

/** Polls until `check` returns a value (Prometheus sees new samples one scrape later). */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not seen within ${ms} ms${last ? ` (${String(last)})` : ''}`);
}

describe.runIf(hasPrometheus)('Prometheus scraping a server', () => {
  let t: TestApp;
  let prometheus: ChildProcess | undefined;
  let dir: string;
  let log = '';

  beforeAll(async () => {
    t = await startTestApp(backends[0] as (typeof backends)[number]);
    await t.server.listen({ host: '127.0.0.1', port: SERVICE_PORT });
    dir = await mkdtemp(path.join(tmpdir(), 'promoguard-prometheus-'));
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: promoguard',
        `    static_configs: [{ targets: ['127.0.0.1:${SERVICE_PORT}'] }]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr?.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
    });
    await eventually('Prometheus ready', async () => {
      const res = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/-/ready`);
      return res.ok ? true : undefined;
    });
  }, 90_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus?.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads M1 and M3 back through its query API', async () => {
    const up = await eventually('the target is up', async () => {
      const r = await query('up{job="promoguard"}');
      return r[0]?.value[1] === '1' ? r : undefined;
    });
    expect(up, log).toHaveLength(1);

    const { campaignId, code } = await campaignWithCode(t);
    const headers = () => ({ 'idempotency-key': unique('K') });
    for (let i = 0; i < 20; i++) {
      const body = checkoutBody(code, { customer: { id: unique('CUS_') } });
      const res = await t.call('POST', '/v1/redemptions', { body, headers: headers() });
      expect(res.statusCode, res.body).toBe(201);
      await t.call('POST', '/v1/validations', { body });
    }

    const m1 = await eventually('M1 redemptions of the campaign', async () => {
      const r = await query(
        `sum by (campaign_id) (promoguard_redemptions_total{outcome="redeemed",campaign_id="${campaignId}"})`,
      );
      return r[0] && Number(r[0].value[1]) === 20 ? r : undefined;
    });
    expect(m1[0]?.metric.campaign_id).toBe(campaignId);

    const m3 = await eventually('M3 validation latency p99', async () => {
      const r = await query(
        'histogram_quantile(0.99, sum by (le) (increase(promoguard_validation_duration_seconds_bucket[1m])))',
      );
      const v = Number(r[0]?.value[1]);
      return Number.isFinite(v) ? v : undefined;
    });
    expect(m3).toBeGreaterThan(0);
    expect(m3).toBeLessThanOrEqual(1);
  }, 120_000);
});
