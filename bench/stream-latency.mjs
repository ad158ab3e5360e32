// How soon a redemption appears on the JetStream stream after its commit: N redemptions through the
// real HTTP stack (Fastify inject) with NATS_URL set; a NATS subscriber on the stream's
// redemption.created subject notes each arrival; the latency is arrival minus the redemption's
// created_at (taken before its transaction, so it includes the commit). Prints p50/p95/p99 and max.
//
//   node scripts/build.mjs --if-stale && node bench/stream-latency.mjs [count=1000] [concurrency=4]
// NATS_URL (default nats://127.0.0.1:4222); DATABASE_URL for PostgreSQL, else PGlite in a temp folder.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config.js';
import { buildServer } from '../dist/http/server.js';
import { percentile, round } from './lib/stats.mjs';

const count = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 4);
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const tag = randomBytes(4).toString('hex');
const stream = `BENCH_LATENCY_${tag}`.toUpperCase();
const prefix = `bench.latency.${tag}`;
const dataDir = process.env.DATABASE_URL ? null : mkdtempSync(join(tmpdir(), 'promoguard-stream-bench-'));

const config = loadConfig({
  LOG_LEVEL: 'silent',
  APPROVALS: 'off',
  RISK_DEFAULT_PACK: 'off',
  RATE_LIMIT_PER_MINUTE: '100000',
  RATE_LIMIT_PER_MINUTE_PER_ADDRESS: '1000000',
  LOCKOUT_AFTER_FAILURES: '10000',
  LOCKOUT_AFTER_FAILURES_PER_ADDRESS: '1000000',
  NATS_URL: natsUrl,
  NATS_STREAM: stream,
  NATS_SUBJECT_PREFIX: prefix,
  ...(process.env.DATABASE_URL
    ? { DATABASE_URL: process.env.DATABASE_URL }
    : { PROMOGUARD_DATA_DIR: dataDir }),
});
const app = await createApp({ config, logger: { error: () => {} } });
const server = await buildServer(app, { logger: false });
const admin = (await app.apiKeys.create('bench', ['admin'], 'bench')).secret;
const call = (method, url, body, headers = {}) =>
  server.inject({ method, url, payload: body, headers: { authorization: `Bearer ${admin}`, ...headers } });

const campaign = await call('POST', '/v1/campaigns', {
  name: 'Stream latency',
  currency: 'USD',
  discount: { type: 'fixed_amount', amount_minor: 100 },
  status: 'active',
  starts_at: '2020-01-01T00:00:00Z',
});
const code = `LAT${tag}`.toUpperCase();
await call('POST', `/v1/campaigns/${campaign.json().id}/codes`, { code, max_uses: count * 2 });

const latencies = [];
const nc = await connect({ servers: natsUrl });
const sub = nc.subscribe(`${prefix}.redemption.created`);
const arrived = (async () => {
  for await (const m of sub) {
    const at = Date.now();
    const event = m.json();
    latencies.push(at - Date.parse(event.payload.redemption.created_at));
    if (latencies.length >= count) break;
  }
})();

let next = 0;
const worker = async () => {
  while (next < count) {
    next++;
    const res = await call(
      'POST',
      '/v1/redemptions',
      {
        code,
        customer: { id: `cus_${randomBytes(6).toString('hex')}` },
        cart: { currency: 'USD', subtotal_minor: 5000 },
      },
      { 'idempotency-key': randomBytes(8).toString('hex') },
    );
    if (res.statusCode !== 201) throw new Error(`redemption: ${res.statusCode} ${res.body}`);
  }
};
const started = Date.now();
await Promise.all(Array.from({ length: concurrency }, worker));
await Promise.race([arrived, new Promise((r) => setTimeout(r, 30_000))]);
const sorted = [...latencies].sort((a, b) => a - b);
console.log(
  JSON.stringify({
    store: app.backend,
    redemptions: count,
    concurrency,
    on_stream: latencies.length,
    wall_ms: Date.now() - started,
    latency_ms: {
      p50: round(percentile(sorted, 50)),
      p95: round(percentile(sorted, 95)),
      p99: round(percentile(sorted, 99)),
      max: sorted.at(-1),
    },
  }),
);
await nc.close();
await server.close();
await app.close();
const cleanup = await connect({ servers: natsUrl });
await (await jetstreamManager(cleanup)).streams.delete(stream).catch(() => {});
await cleanup.close();
if (dataDir) rmSync(dataDir, { recursive: true, force: true });
