/**
 * Streaming detection through the real app, on every backend: committed redemptions and refused
 * attempts reach the detectors, and an alarm is one alert row with its `alert.raised` event. Time is a
 * test clock: the events carry its instants, so forty minutes of baseline take a second.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import { toWire } from '../../src/events/wire.js';
import { DetectionService } from '../../src/services/detection.js';
import { campaignBody, checkoutBody, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const MINUTE = 60_000;
const WARMUP = 10;
const env = { DETECTION_WARMUP_INTERVALS: String(WARMUP) };

/** The event's wire form against its published JSON schema (as test/events/event-schemas.test.ts does). */
function matchesSchema(event: DomainEvent): string | null {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(s));
  const schema = JSON.parse(
    readFileSync(new URL(`../../schemas/events/${event.type}.json`, import.meta.url), 'utf8'),
  ) as object;
  return ajv.validate(schema, JSON.parse(JSON.stringify(toWire(event)))) ? null : ajv.errorsText();
}

interface Alert {
  id: string;
  kind: string;
  status: string;
  scope: { type: string; id: string; campaign_id: string | null };
  triggered_by_event_id: string | null;
  detector_key: string;
}

for (const backend of backends) {
  describe(`detection on ${backend.name}`, () => {
    let t: TestApp;
    const clock = new TestClock(new Date('2026-06-01T12:00:00Z'));
    const events: DomainEvent[] = [];

    beforeAll(async () => {
      t = await startTestApp(backend, { clock, env });
      // These tests watch the detectors alone: the shipped remediation policies would act on their
      // alerts (challenging the burst's later redemptions), which test/remediation covers.
      const policies = await t.call('GET', '/v1/remediation-policies');
      expect(policies.statusCode, policies.body).toBe(200);
      for (const p of policies.json().data as { id: string }[]) {
        const off = await t.call('PATCH', `/v1/remediation-policies/${p.id}`, { body: { enabled: false } });
        expect(off.statusCode, off.body).toBe(200);
      }
      t.app.bus.subscribe((e) => {
        events.push(e);
      });
    });
    afterAll(async () => {
      await t?.close();
    });

    /** A campaign with `n` single-use codes (a batch handed to a partner, say). */
    async function campaignWithCodes(n: number, overrides = {}): Promise<{ id: string; codes: string[] }> {
      const created = await t.call('POST', '/v1/campaigns', { body: campaignBody(overrides) });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id as string;
      const codes = Array.from({ length: n }, () => unique('LEAK'));
      const made = await t.call('POST', `/v1/campaigns/${id}/codes`, {
        body: { codes: codes.map((code) => ({ code, max_uses: 1 })) },
      });
      expect(made.statusCode, made.body).toBe(201);
      return { id, codes };
    }

    async function redeem(code: string, customer = unique('cus_'), subtotal = 10_000): Promise<string> {
      const res = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: checkoutBody(code, { customer: { id: customer }, cart: { subtotal_minor: subtotal } }),
        headers: { 'idempotency-key': unique('idem-') },
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json().id as string;
    }

    /** Moves the clock to the start of the next minute (the detectors' intervals). */
    function nextMinute(): number {
      const now = clock.now().getTime();
      clock.advance(MINUTE - (now % MINUTE));
      return clock.now().getTime();
    }

    /** Two redemptions a minute for `minutes`, then `burst` within one minute; events delivered as they go. */
    async function baselineThenBurst(codes: string[], minutes: number, burst: number): Promise<void> {
      nextMinute();
      let next = 0;
      for (let m = 0; m < minutes; m++) {
        clock.advance(10_000);
        await redeem(codes[next++] as string);
        clock.advance(30_000);
        await redeem(codes[next++] as string);
        clock.advance(20_000);
        await t.app.relay.drain();
      }
      for (let i = 0; i < burst; i++) {
        clock.advance(1_000);
        await redeem(codes[next++] as string);
        await t.app.relay.drain();
      }
    }

    async function alerts(query = ''): Promise<Alert[]> {
      await t.app.detection?.settled();
      const res = await t.call('GET', `/v1/alerts${query}`);
      expect(res.statusCode, res.body).toBe(200);
      return res.json().data as Alert[];
    }

    it('a leak spike on a campaign raises exactly one alert, scoped to the campaign, and its event', async () => {
      const { id, codes } = await campaignWithCodes(2 * 40 + 30);
      await baselineThenBurst(codes, 40, 30);
      const raised = (await alerts(`?campaign_id=${id}`)).filter((a) => a.kind === 'redemption_spike');
      expect(raised).toHaveLength(1);
      const [alert] = raised as [Alert];
      expect(alert.scope).toMatchObject({ type: 'campaign', id, campaign_id: id });
      expect(alert.status).toBe('open');
      // Raised by a redemption inside the burst, not when the minute closed.
      const trigger = events.find((e) => e.id === alert.triggered_by_event_id);
      expect(trigger?.type).toBe('redemption.created');
      await t.app.relay.drain();
      const event = events.find((e) => e.type === 'alert.raised' && e.aggregateId === alert.id);
      expect(event?.payload).toMatchObject({
        alert_id: alert.id,
        kind: 'redemption_spike',
        scope: { type: 'campaign', id, campaign_id: id },
        severity: 'page',
      });
      expect(matchesSchema(event as DomainEvent)).toBeNull();

      // Delivered again (the relay's at-least-once): nothing new.
      const before = (await alerts()).length;
      for (const e of events.filter((x) => x.type === 'redemption.created')) await t.app.bus.publish(e);
      expect(await alerts()).toHaveLength(before);
      clock.advance(10 * MINUTE);
    });

    it('watches a public code’s own rate, and gives a single-use code no key of its own', async () => {
      const created = await t.call('POST', '/v1/campaigns', { body: campaignBody() });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id as string;
      const code = unique('PUBLIC');
      const made = await t.call('POST', `/v1/campaigns/${id}/codes`, {
        body: { codes: [{ code, max_uses: 10_000 }] },
      });
      expect(made.statusCode, made.body).toBe(201);
      await baselineThenBurst(Array(2 * 40 + 30).fill(code), 40, 30);
      const scopes = (await alerts(`?campaign_id=${id}`))
        .filter((a) => a.kind === 'redemption_spike')
        .map((a) => a.scope.type)
        .sort();
      expect(scopes).toEqual(['campaign', 'code']);

      // Three single-use codes of a new campaign: one new rate key (the campaign), none per code.
      const batch = await campaignWithCodes(3);
      const before = (t.app.detection as DetectionService).sizes.rate;
      for (const c of batch.codes) await redeem(c);
      await t.app.relay.drain();
      expect((t.app.detection as DetectionService).sizes.rate - before).toBe(1);
      clock.advance(10 * MINUTE);
    });

    it('the same burst inside a declared planned peak raises none', async () => {
      const start = nextMinute();
      const peak = {
        starts_at: new Date(start + 40 * MINUTE).toISOString(),
        ends_at: new Date(start + 45 * MINUTE).toISOString(),
        expected_per_minute: 40,
      };
      const { id, codes } = await campaignWithCodes(2 * 40 + 30, { planned_peaks: [peak] });
      await baselineThenBurst(codes, 40, 30);
      expect(
        (await alerts(`?campaign_id=${id}`))
          .filter((a) => a.kind === 'redemption_spike')
          .map((a) => a.detector_key),
      ).toEqual([]);
      clock.advance(10 * MINUTE);
    });

    it('a refusal wave over many /64s inside one /48 raises refusal_wave for the /48', async () => {
      for (let i = 0; i < 25; i++) {
        clock.advance(500);
        const res = await t.call('POST', '/v1/validations', {
          key: t.keys.checkout,
          body: checkoutBody(unique('GUESS'), {
            customer: { id: unique('cus_') },
            context: { ip: `2001:db8:77:${(i + 1).toString(16)}::1` },
          }),
        });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json().valid).toBe(false);
      }
      const waves = await alerts('?kind=refusal_wave');
      const block = waves.find((a) => a.scope.type === 'address_block' && a.scope.id === '2001:db8:77::/48');
      expect(block, JSON.stringify(waves)).toBeDefined();
      expect(waves.filter((a) => a.scope.id === '2001:db8:77::/48')).toHaveLength(1);
      clock.advance(10 * MINUTE);
    });

    it('redeem and roll back again and again raises rollback_cycle for the person', async () => {
      const created = await t.call('POST', '/v1/campaigns', { body: campaignBody() });
      const campaignId = created.json().id as string;
      const code = unique('LOOP');
      await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code } });
      const customer = unique('cus_');
      for (let i = 0; i < 3; i++) {
        clock.advance(MINUTE);
        const id = await redeem(code, customer);
        const rolled = await t.call('POST', `/v1/redemptions/${id}/rollback`, { key: t.keys.checkout });
        expect(rolled.statusCode, rolled.body).toBe(200);
        await t.app.relay.drain();
      }
      const cycles = (await alerts('?kind=rollback_cycle')).filter((a) => a.scope.campaign_id === campaignId);
      expect(cycles).toHaveLength(1);
      expect(cycles[0]?.scope.type).toBe('person');
    });

    it('many small orders by one person in a day raise order_splitting; large ones do not', async () => {
      const created = await t.call('POST', '/v1/campaigns', { body: campaignBody() });
      const campaignId = created.json().id as string;
      const code = unique('SHIP');
      await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code } });
      const big = unique('cus_');
      for (let i = 0; i < 6; i++) {
        clock.advance(20 * MINUTE);
        await redeem(code, big, 10_000);
      }
      await t.app.relay.drain();
      const splitter = unique('cus_');
      for (let i = 0; i < 4; i++) {
        clock.advance(20 * MINUTE);
        await redeem(code, splitter, 1_500);
      }
      await t.app.relay.drain();
      const ofCampaign = async () =>
        (await alerts('?kind=order_splitting')).filter((a) => a.scope.campaign_id === campaignId);
      expect(await ofCampaign()).toEqual([]);
      clock.advance(20 * MINUTE);
      await redeem(code, splitter, 1_500);
      await t.app.relay.drain();
      const raised = await ofCampaign();
      expect(raised).toHaveLength(1);
      expect(raised[0]?.scope.type).toBe('person');
      clock.advance(24 * 60 * MINUTE);
    });

    it('a burst of distinct devices on a campaign raises distinct_spike beside the rate', async () => {
      const { id, codes } = await campaignWithCodes(2 * 40 + 30);
      nextMinute();
      let next = 0;
      // One customer per device: a device shared by many accounts is a farm, which the rules refuse.
      const redeemFrom = async (device: string, customer = unique('cus_')) => {
        const res = await t.call('POST', '/v1/redemptions', {
          key: t.keys.checkout,
          body: checkoutBody(codes[next++] as string, {
            customer: { id: customer },
            context: { device_id: device },
          }),
          headers: { 'idempotency-key': unique('idem-') },
        });
        expect(res.statusCode, res.body).toBe(201);
      };
      // Two redemptions a minute from one of two devices, then thirty devices within a minute.
      for (let m = 0; m < 40; m++) {
        clock.advance(10_000);
        await redeemFrom(`dev-a-${id}`, `cus-a-${id}`);
        clock.advance(30_000);
        await redeemFrom(`dev-b-${id}`, `cus-b-${id}`);
        clock.advance(20_000);
        await t.app.relay.drain();
      }
      for (let i = 0; i < 30; i++) {
        clock.advance(1_000);
        await redeemFrom(unique('dev-'));
        await t.app.relay.drain();
      }
      const spikes = (await alerts(`?campaign_id=${id}&kind=distinct_spike`)).filter(
        (a) => a.kind === 'distinct_spike',
      );
      expect(spikes.map((a) => a.detector_key)).toContain(`distinct:device:campaign:${id}`);
      clock.advance(10 * MINUTE);
    });

    it('an alert is acknowledged and resolved by a fraud key, audited, and the list filters by status', async () => {
      const [alert] = await alerts('?kind=redemption_spike');
      expect(alert).toBeDefined();
      const id = (alert as Alert).id;
      const ack = await t.call('POST', `/v1/alerts/${id}/acknowledge`, { body: { reason: 'looking' } });
      expect(ack.statusCode, ack.body).toBe(200);
      expect(ack.json()).toMatchObject({ status: 'acknowledged' });
      const done = await t.call('POST', `/v1/alerts/${id}/resolve`, { body: { reason: 'batch revoked' } });
      expect(done.json()).toMatchObject({ status: 'resolved' });
      expect((await t.call('POST', `/v1/alerts/${id}/resolve`)).statusCode).toBe(200);
      const again = await t.call('POST', `/v1/alerts/${id}/acknowledge`);
      expect(again.statusCode).toBe(409);
      expect(again.json().code).toBe('alert_resolved');
      expect((await alerts('?status=resolved')).map((a) => a.id)).toEqual([id]);
      const audit = await t.call('GET', `/v1/audit?resource=${id}`);
      expect(
        audit
          .json()
          .data.map((e: { action: string }) => e.action)
          .sort(),
      ).toEqual(['alert.acknowledged', 'alert.resolved']);
      await t.app.relay.drain();
      const lifecycle = events.filter((e) => e.aggregateId === id && e.type !== 'alert.raised');
      expect(lifecycle.map((e) => e.type)).toEqual(['alert.acknowledged', 'alert.resolved']);
      for (const e of lifecycle) expect(matchesSchema(e)).toBeNull();
      expect((await t.call('GET', `/v1/alerts/${id}`, { key: t.keys.marketing })).statusCode).toBe(403);
      expect((await t.call('GET', '/v1/alerts/alt_01HZZZZZZZZZZZZZZZZZZZZZZZ')).statusCode).toBe(404);
    });

    it('pages with a cursor', async () => {
      const first = await t.call('GET', '/v1/alerts?limit=1');
      const next = first.json().next_cursor as string;
      expect(next).toBeTruthy();
      const second = await t.call('GET', `/v1/alerts?limit=1&cursor=${next}`);
      expect(second.json().data[0].id < first.json().data[0].id).toBe(true);
    });

    it('a restarted detector keeps its baselines', async () => {
      const { id, codes } = await campaignWithCodes(2 * 40 + 30);
      // Baseline under the app's detector, saved as on shutdown.
      await baselineThenBurst(codes.slice(0, 80), 40, 0);
      const original = t.app.detection as DetectionService;
      await original.stop();
      const restarted = new DetectionService(
        { db: t.app.db, clock, afterCommit: () => t.app.relay.notify(), metrics: t.app.metrics },
        {
          ...detectionOptions(),
          warmupIntervals: WARMUP,
        },
      );
      await restarted.start(t.app.bus, t.app.telemetry);
      try {
        // The burst alone: a detector that had lost its state would still be warming up.
        for (const code of codes.slice(80)) {
          clock.advance(1_000);
          await redeem(code);
          await t.app.relay.drain();
        }
        const raised = (await alerts(`?campaign_id=${id}`)).filter((a) => a.kind === 'redemption_spike');
        expect(raised).toHaveLength(1);
      } finally {
        await restarted.stop();
        await original.start(t.app.bus, t.app.telemetry);
      }
    });
  });
}

function detectionOptions() {
  return {
    intervalMs: MINUTE,
    warmupIntervals: WARMUP,
    targetArl: 100_000,
    maxKeys: 100_000,
    tickMs: 60_000,
    snapshotMs: 600_000,
    actorWindowMs: 24 * 3_600_000,
    rollbacksPerWindow: 3,
    smallOrdersPerWindow: 5,
    smallOrderMinor: 2500,
    newAccountHours: 24,
    logger: { error: () => {} },
  };
}
