/**
 * A node killed with SIGKILL mid-load: under redemptions spread over three API processes, the node
 * holding a webhook attempt in flight is killed. Every redemption still reaches JetStream once after
 * deduplication (read back with a consumer), the events its relay had claimed are delivered by another
 * node once their lease ran out, and its webhook attempt is retried by another node and received once
 * successfully with a valid Standard Webhooks signature. SCALE_REDEMPTIONS sets the load (default 2,000).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, clusterReady, readSubject, waitUntil } from '../support/nodes.js';

const COUNT = Number(process.env['SCALE_REDEMPTIONS'] ?? 2_000);
const RECEIVER_PORT = 20120;
/** Generous for a loaded 2-core host: the load itself, then the leases. */
const LOAD_MS = Math.max(120_000, COUNT * 50);
/** The relay's lease (src/events/outbox-relay.ts) and the webhook lease: 2 × WEBHOOKS_TIMEOUT_MS + 30 s. */
const OUTBOX_LEASE_MS = 30_000;
/** Long enough that the attempt is still in flight when its sender is found and killed on a loaded host. */
const WEBHOOK_TIMEOUT_MS = 10_000;
const WEBHOOK_LEASE_MS = 2 * WEBHOOK_TIMEOUT_MS + 30_000;

/** The process holding the local end of a loopback TCP connection from `port` (Linux /proc). */
async function processOfPort(port: number, pids: number[]): Promise<number | null> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hex}`))
    .map((f) => f[9]);
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (inodes.some((inode) => link === `socket:[${inode}]`)) return pid;
    }
  }
  return null;
}

describe.runIf(clusterReady)('a node killed mid-load', () => {
  const cluster = new Cluster('failover', [20111, 20112, 20113], {
    WEBHOOKS_ALLOW_HOSTS: '127.0.0.1',
    WEBHOOKS_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS),
    WEBHOOKS_POLL_MS: '200',
  });
  let secret = '';
  let sender: Promise<number> | null = null;
  const senderOf = async (port: number) => {
    const pids = cluster.nodes.map((n) => n.child.pid as number);
    for (let tries = 0; tries < 20; tries++) {
      const pid = await processOfPort(port, pids);
      if (pid !== null) return pids.indexOf(pid);
      await new Promise((r) => setTimeout(r, 50));
    }
    return -1;
  };
  /** The first attempt is held unanswered (in flight) until its sender is killed. */
  let firstAttempt: (port: number) => void = () => {};
  const arrived = new Promise<number>((resolve) => {
    firstAttempt = resolve;
  });
  const received: { id: string; verified: boolean; answered: number }[] = [];
  const succeeded = new Map<string, number>();
  const receiver = http.createServer((req, res) => {
    // The first attempt's sender is looked up while its connection is certainly open.
    if (received.length === 0 && !sender) sender = senderOf(req.socket.remotePort as number);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      let verified = false;
      try {
        new Webhook(secret).verify(Buffer.concat(chunks).toString('utf8'), {
          'webhook-id': id,
          'webhook-timestamp': String(req.headers['webhook-timestamp']),
          'webhook-signature': String(req.headers['webhook-signature']),
        });
        verified = true;
      } catch {}
      if (received.length === 0) {
        received.push({ id, verified, answered: 0 });
        firstAttempt(req.socket.remotePort as number);
        return;
      }
      const duplicate = succeeded.has(id);
      if (verified) succeeded.set(id, (succeeded.get(id) ?? 0) + 1);
      received.push({ id, verified, answered: verified ? 200 : 400 });
      res.writeHead(verified ? 200 : 400).end(duplicate ? 'seen' : 'ok');
    });
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(RECEIVER_PORT, '127.0.0.1', resolve));
    await cluster.start();
  }, 180_000);
  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await cluster.stop();
  }, 60_000);

  it(
    `streams ${COUNT} redemptions once each and retries the killed node's webhook elsewhere`,
    async () => {
      const hooked = await cluster.call(0, 'POST', '/v1/campaigns', cluster.admin, {
        name: 'hooked',
        currency: 'USD',
        status: 'active',
        discount: { type: 'fixed_amount', amount_minor: 100 },
      });
      expect(hooked.status).toBe(201);
      const hook = await cluster.call(0, 'POST', '/v1/webhooks', cluster.admin, {
        url: `http://127.0.0.1:${RECEIVER_PORT}/hook`,
        event_types: ['campaign.paused'],
      });
      expect(hook.status, JSON.stringify(hook.json)).toBe(201);
      secret = String(hook.json.secret);
      const made = await cluster.call(1, 'POST', '/v1/campaigns', cluster.admin, {
        name: 'load',
        currency: 'USD',
        status: 'active',
        discount: { type: 'fixed_amount', amount_minor: 100 },
      });
      const campaignId = String(made.json.id);
      await cluster.call(2, 'POST', `/v1/campaigns/${campaignId}/codes`, cluster.admin, { code: 'LOAD' });

      // The load: COUNT redemptions with keys of their own, spread over the nodes; a request to a node
      // that died (or died under it) goes again, with the same key, to the next live node.
      const ids = new Set<string>();
      const rolledBack = new Set<string>();
      let next = 0;
      let done = 0;
      let killed = -1;
      let doneAtKill = 0;
      let releaseGate: () => void = () => {};
      const gate = new Promise<void>((r) => {
        releaseGate = r;
      });
      const send = async (k: number, route: string, body: unknown, key: string) => {
        let last: unknown = null;
        for (let node = k % 3, tries = 0; tries < 60; node = (node + 1) % 3, tries++) {
          if (!cluster.alive(node)) continue;
          const a = await cluster
            .call(node, 'POST', route, cluster.checkout, body, key)
            .catch((err: unknown) => {
              last = err;
              return null;
            });
          if (a && a.status < 300) return a.json;
          if (a && a.status !== 503)
            throw new Error(`${route} ${key}: ${a.status} ${JSON.stringify(a.json)}`);
          if (a) last = a.json;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(
          `${route} ${key}: no node answered (${String(last)} ${JSON.stringify(last)})\n${cluster.output.slice(-3000)}`,
        );
      };
      const worker = async () => {
        for (let k = next++; k < COUNT; k = next++) {
          // The kill must land mid-load: past 90 % the load waits for it (it comes well before, as a rule).
          if (k >= Math.floor(COUNT * 0.9)) await gate;
          const body = {
            code: 'LOAD',
            customer: { id: `cus_${k}` },
            cart: { currency: 'USD', subtotal_minor: 5_000 },
          };
          const r = await send(k, '/v1/redemptions', body, `load-${k}`);
          const id = String(r.id);
          ids.add(id);
          if (k % 40 === 0) {
            await send(k + 1, `/v1/redemptions/${id}/rollback`, { reason: 'order cancelled' }, `rb-${k}`);
            rolledBack.add(id);
          }
          done++;
        }
      };
      const workers = Array.from({ length: 24 }, () => worker());

      // At a third of the load, a change whose webhook attempt the receiver holds; its sender dies.
      await waitUntil('a third of the load', async () => done >= COUNT / 3, LOAD_MS);
      const paused = await cluster.call(0, 'POST', `/v1/campaigns/${hooked.json.id}/pause`, cluster.admin, {
        reason: 'test',
      });
      expect(paused.status).toBe(200);
      await arrived;
      killed = await (sender as unknown as Promise<number>);
      expect(killed, 'the webhook sender is one of the nodes').toBeGreaterThanOrEqual(0);
      doneAtKill = done;
      await cluster.kill(killed);
      const killedAt = Date.now();
      // What every relay has claimed and not yet published at the kill, kept in the database (exact
      // timestamps): the survivors publish theirs within their lease, the dead node's wait for it to end.
      await cluster.query(
        `CREATE TABLE claimed_at_kill AS
         SELECT id, claimed_until FROM outbox WHERE published_at IS NULL AND claimed_until > now()`,
      );
      releaseGate();
      await Promise.all(workers);
      expect(doneAtKill).toBeLessThan(COUNT);
      expect(ids.size).toBe(COUNT);
      await waitUntil(
        'the outbox delivered',
        async () =>
          (
            await cluster.query<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL')
          )[0]?.n === '0',
        OUTBOX_LEASE_MS + 20_000,
      );
      // Those published only after their lease at the kill had run out are the dead relay's: claimed
      // again by a survivor (a later lease) and published by it.
      const held = await cluster.query<{ id: string; reclaimed: boolean }>(
        `SELECT o.id, o.claimed_until > k.claimed_until AS reclaimed
         FROM outbox o JOIN claimed_at_kill k USING (id) WHERE o.published_at >= k.claimed_until`,
      );
      expect(held.length, 'events the killed relay had claimed').toBeGreaterThan(0);
      expect(held.filter((r) => !r.reclaimed)).toEqual([]);

      const rows = await cluster.query<{ id: string }>('SELECT id FROM redemptions WHERE campaign_id = $1', [
        campaignId,
      ]);
      expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
      const streamed = await readSubject(
        cluster.stream.NATS_STREAM,
        `${cluster.stream.NATS_SUBJECT_PREFIX}.redemption.*`,
      );
      const createdOnStream = streamed.filter((e) => e.type === 'redemption.created');
      expect(createdOnStream).toHaveLength(COUNT);
      expect(new Set(createdOnStream.map((e) => e.aggregateId))).toEqual(ids);
      const rolledOnStream = streamed.filter((e) => e.type === 'redemption.rolled_back');
      expect(new Set(rolledOnStream.map((e) => e.aggregateId))).toEqual(rolledBack);
      expect(rolledOnStream).toHaveLength(rolledBack.size);
      // Per aggregate, the envelope orders an aggregate's events as they committed (docs/scaling-out.md).
      const createdAt = new Map(createdOnStream.map((e) => [e.aggregateId, e.createdAt]));
      for (const e of rolledOnStream)
        expect(e.createdAt >= (createdAt.get(e.aggregateId) as string)).toBe(true);
      const outOfStreamOrder = rolledOnStream.filter(
        (e) => e.seq < (createdOnStream.find((c) => c.aggregateId === e.aggregateId)?.seq ?? 0),
      ).length;

      // The webhook attempt the dead node had in flight: sent again by a survivor after its lease.
      await waitUntil('the webhook retried', async () => succeeded.size > 0, WEBHOOK_LEASE_MS + 20_000);
      const first = received[0];
      expect(first?.verified).toBe(true);
      expect(succeeded.get(first?.id as string)).toBe(1);
      expect(received.filter((r) => r.answered === 200)).toHaveLength(1);
      const log = await cluster.call(
        (killed + 1) % 3,
        'GET',
        `/v1/webhooks/${hook.json.id}/deliveries`,
        cluster.admin,
      );
      expect(log.json.data).toEqual([expect.objectContaining({ status: 'succeeded' })]);
      let counted = 0;
      for (const i of [0, 1, 2].filter((i) => i !== killed)) {
        const m = /^promoguard_webhook_deliveries_total\{outcome="succeeded"\} (\d+)/m.exec(
          await cluster.metrics(i),
        );
        counted += Number(m?.[1] ?? 0);
      }
      expect(counted).toBe(1);
      process.stdout.write(
        `failover: ${COUNT} redemptions (${rolledBack.size} rolled back), node ${killed} killed after ${doneAtKill}; ` +
          `${held.length} events it held went out after its lease; ${createdOnStream.length} redemption.created on the stream; ` +
          `${outOfStreamOrder} rollbacks ahead of their redemption in stream order; webhook retried ` +
          `${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill at the latest\n`,
      );
    },
    LOAD_MS + 120_000,
  );
});
