/**
 * The whole loop with nothing published by hand, on every backend: committed redemptions reach the
 * streaming detector, its leak-spike alert reaches the shipped policies through the stream, their
 * remediations act on the next request (a guest must pass a step-up), and lifting them restores it.
 * Time is a test clock, so forty minutes of baseline take a second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignBody, checkoutBody, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const MINUTE = 60_000;

interface Remediation {
  id: string;
  policy_id: string;
  action: string;
  status: string;
  dry_run: boolean;
}

for (const backend of backends) {
  describe(`detector → remediation → lift on ${backend.name}`, () => {
    let t: TestApp;
    const clock = new TestClock(new Date('2026-06-01T12:00:00Z'));

    beforeAll(async () => {
      t = await startTestApp(backend, { clock, env: { DETECTION_WARMUP_INTERVALS: '10' } });
    });
    afterAll(async () => {
      await t?.close();
    });

    /** A guest redemption (no account age): answers 201, or 428 once a step-up is required. */
    const redeem = (code: string) =>
      t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: checkoutBody(code, { customer: { id: unique('cus_') } }),
        headers: { 'idempotency-key': unique('idem-') },
      });

    async function remediationsOf(alertId: string): Promise<Remediation[]> {
      const res = await t.call('GET', `/v1/remediations?alert_id=${alertId}`);
      expect(res.statusCode, res.body).toBe(200);
      return res.json().data as Remediation[];
    }

    it('a leak spike is detected, remediated by the shipped policies, and lifted by on-call', async () => {
      const created = await t.call('POST', '/v1/campaigns', { body: campaignBody() });
      expect(created.statusCode, created.body).toBe(201);
      const campaignId = created.json().id as string;
      const codes = Array.from({ length: 140 }, () => unique('LEAK'));
      const made = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        body: { codes: codes.map((code) => ({ code, max_uses: 1 })) },
      });
      expect(made.statusCode, made.body).toBe(201);

      // Two redemptions a minute for forty minutes: the campaign's baseline.
      clock.advance(MINUTE - (clock.now().getTime() % MINUTE));
      let next = 0;
      for (let m = 0; m < 40; m++) {
        clock.advance(10_000);
        expect((await redeem(codes[next++] as string)).statusCode).toBe(201);
        clock.advance(30_000);
        expect((await redeem(codes[next++] as string)).statusCode).toBe(201);
        clock.advance(20_000);
        await t.app.relay.drain();
      }
      // Then a leak: thirty in one minute.
      for (let i = 0; i < 30; i++) {
        clock.advance(1_000);
        expect([201, 428]).toContain((await redeem(codes[next++] as string)).statusCode);
        await t.app.relay.drain();
      }
      await t.app.detection?.settled();
      await t.app.relay.drain();
      const listed = await t.call('GET', `/v1/alerts?campaign_id=${campaignId}`);
      const alert = (listed.json().data as { id: string; kind: string }[]).find(
        (a) => a.kind === 'redemption_spike',
      );
      expect(alert, listed.body).toBeDefined();
      const alertId = (alert as { id: string }).id;

      // The alert travels the stream to the remediation subscriber: wait for its work to commit.
      let applied: Remediation[] = [];
      for (let i = 0; i < 100 && applied.length < 2; i++) {
        await t.app.relay.drain();
        applied = await remediationsOf(alertId);
        if (applied.length < 2) await new Promise((r) => setTimeout(r, 50));
      }
      expect(applied.map((r) => r.action).sort()).toEqual(['require_step_up', 'throttle']);
      expect(applied.every((r) => r.status === 'active' && !r.dry_run)).toBe(true);

      // In force: a guest must pass a step-up, and the decision names the remediation.
      const challenged = await redeem(codes[next++] as string);
      expect(challenged.statusCode, challenged.body).toBe(428);
      const stepUp = applied.find((r) => r.action === 'require_step_up') as Remediation;
      expect(challenged.json().decision.because).toContain(stepUp.id);

      for (const r of applied) {
        const lifted = await t.call('POST', `/v1/remediations/${r.id}/lift`, {
          body: { reason: 'leak contained: codes rotated' },
        });
        expect(lifted.statusCode, lifted.body).toBe(200);
        expect(lifted.json().status).toBe('lifted');
      }
      expect((await remediationsOf(alertId)).map((r) => r.status)).toEqual(['lifted', 'lifted']);
      clock.advance(2 * MINUTE);
      const served = await redeem(codes[next++] as string);
      expect(served.statusCode, served.body).toBe(201);

      const audit = await t.app.db
        .selectFrom('audit_log')
        .select(['action', 'target_id'])
        .where(
          'target_id',
          'in',
          applied.map((r) => r.id),
        )
        .execute();
      expect(audit.map((a) => a.action).sort()).toEqual([
        'remediation.applied',
        'remediation.applied',
        'remediation.lifted',
        'remediation.lifted',
      ]);
    }, 120_000);
  });
}
