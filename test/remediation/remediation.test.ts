/**
 * Automated remediation through the real app and HTTP API, on PGlite and PostgreSQL: an `alert.raised`
 * event → the shipped policy acts (the next request is throttled, challenged, refused or the codes are
 * gone) → lift or expiry → the effect is gone. Dry runs change nothing; a redelivered alert acts once;
 * every remediation has an audit entry and an expiry; bad policies are refused with 422.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import { toWire } from '../../src/events/wire.js';
import { newId } from '../../src/lib/ids.js';
import { readMetrics } from '../../src/store/metric-readings.js';
import { appendEvents } from '../../src/store/outbox.js';
import {
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  TestClock,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const OLD_ACCOUNT = { account_created_at: '2020-01-01T00:00:00Z' };

interface Scope {
  type: string;
  id: string;
  campaign_id?: string;
  partner?: string;
  batch_id?: string;
}

function alertPayload(kind: string, scope: Scope, severity = 'page') {
  return {
    alert_id: `alr_${unique('')}`,
    kind,
    scope,
    severity,
    observed: 60,
    expected: 2,
    interval_seconds: 60,
    triggered_by_event_id: null,
    triggered_at: '2026-06-01T12:00:00.000Z',
    raised_at: '2026-06-01T12:00:00.100Z',
  };
}

function alertEvent(payload: { alert_id: string }): DomainEvent {
  return {
    id: newId('event'),
    type: 'alert.raised',
    aggregateId: payload.alert_id,
    payload,
    createdAt: new Date(),
  };
}

for (const backend of backends) {
  describe(`remediation by policy on ${backend.name}`, () => {
    let t: TestApp;
    let fraud: string;
    const clock = new TestClock();
    const events: DomainEvent[] = [];
    let order = 0;

    beforeAll(async () => {
      t = await startTestApp(backend, { clock });
      fraud = (await t.app.apiKeys.create('on-call', ['fraud'], 'test')).secret;
      t.app.bus.subscribe((e) => {
        if (e.type.startsWith('remediation.')) events.push(e);
      });
    }, 120_000);
    afterAll(async () => t?.close());

    const raise = (payload: { alert_id: string }) => t.app.bus.publish(alertEvent(payload));

    const redeem = (
      code: string,
      customer: Record<string, unknown> = {},
      context?: Record<string, unknown>,
    ) => {
      order += 1;
      return t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: checkoutBody(code, {
          customer: { id: `cus_${order}`, ...customer },
          ...(context ? { context } : {}),
          order_id: `ord-${order}`,
        }),
        headers: { 'idempotency-key': `rem-${backend.name}-${order}` },
      });
    };

    const refusal = (r: LightMyRequestResponse) =>
      r.statusCode === 201 ? 'redeemed' : r.statusCode === 422 ? r.json().reason : r.json().code;

    async function remediationsOf(alertId: string) {
      const r = await t.call('GET', `/v1/remediations?alert_id=${alertId}`, { key: fraud });
      expect(r.statusCode).toBe(200);
      return r.json().data as {
        id: string;
        action: string;
        status: string;
        dry_run: boolean;
        change: Record<string, unknown>;
      }[];
    }

    async function lift(id: string) {
      const r = await t.call('POST', `/v1/remediations/${id}/lift`, {
        key: fraud,
        body: { reason: 'false alarm, checked with the partner' },
      });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().status).toBe('lifted');
      return r.json();
    }

    async function codeIdOf(campaignId: string): Promise<string> {
      const r = await t.call('GET', `/v1/campaigns/${campaignId}/codes`);
      return r.json().data[0].id;
    }

    /** A counter's value as /metrics shows it, by its labels in catalogue order. */
    async function counter(name: string, labels: string): Promise<number> {
      const res = await t.call('GET', '/metrics', { key: null });
      const line = res.body.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
      return Number(line?.split(' ')[1] ?? Number.NaN);
    }

    it('leak spike: throttles the campaign and challenges guests and new accounts; lifting ends both', async () => {
      const throttles = (how: string) =>
        counter('promoguard_remediations_total', `action="throttle",how="${how}"`);
      const [appliedBefore, liftedBefore] = [await throttles('applied'), await throttles('lifted')];
      const { campaignId, code } = await campaignWithCode(t);
      const codeId = await codeIdOf(campaignId);
      // Before the alert a guest redeems without a challenge.
      expect(refusal(await redeem(code))).toBe('redeemed');

      const alert = alertPayload('redemption_spike', { type: 'code', id: codeId, campaign_id: campaignId });
      await raise(alert);
      const applied = await remediationsOf(alert.alert_id);
      expect(applied.map((r) => r.action).sort()).toEqual(['require_step_up', 'throttle']);
      expect(applied.every((r) => r.status === 'active' && !r.dry_run)).toBe(true);
      expect(await throttles('applied')).toBe(appliedBefore + 1);
      const readings = await readMetrics(t.app.db, { campaigns: 0, topN: 0, now: new Date() });
      expect(readings.promoguard_remediations_active).toContainEqual({
        labels: { action: 'throttle', mode: 'enforce' },
        value: expect.any(Number),
      });

      // A guest (no account age) and a day-old account are challenged; an old account is not.
      const guest = await redeem(code);
      expect(guest.statusCode).toBe(428);
      expect(guest.json().code).toBe('challenge_required');
      expect(guest.json().decision.because).toContain(
        applied.find((r) => r.action === 'require_step_up')?.id,
      );
      const fresh = await redeem(code, {}, { account_created_at: '2026-05-31T12:00:00Z' });
      expect(fresh.statusCode).toBe(428);

      // Throttled to 10 a minute (the guest's first redemption counted in another minute).
      clock.advance(60_000);
      const burst = [];
      for (let i = 0; i < 11; i++) burst.push(refusal(await redeem(code, {}, OLD_ACCOUNT)));
      expect(burst.filter((b) => b === 'redeemed')).toHaveLength(10);
      expect(burst[10]).toBe('campaign_throttled');

      for (const r of applied) await lift(r.id);
      expect(await throttles('lifted')).toBe(liftedBefore + 1);
      // Lifted: a guest redeems at once, in the same minute, without a challenge.
      expect(refusal(await redeem(code))).toBe('redeemed');
      expect(refusal(await redeem(code, {}, OLD_ACCOUNT))).toBe('redeemed');
      const active = await t.call('GET', '/v1/remediations?status=active', { key: fraud });
      expect(active.json().data.filter((r: { alert_id: string }) => r.alert_id === alert.alert_id)).toEqual(
        [],
      );
    });

    it('guessing wave: a caller failing on the batch three times is refused there; lifting lets it try again', async () => {
      const { campaignId } = await campaignWithCode(t);
      const gen = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        body: { generate: { count: 5, prefix: `G${unique('').slice(0, 6)}` } },
      });
      expect(gen.statusCode).toBe(201);
      const batchId = gen.json().batch_id as string;
      const codes = await t.call('GET', `/v1/campaigns/${campaignId}/codes?limit=10`);
      const real = (codes.json().data as { code: string; batch_id: string | null }[])
        .find((c) => c.batch_id === batchId)
        ?.code.replace(/[^0-9A-Z]/gi, '') as string;
      // Guesses of the batch's shape: the last symbols changed.
      const guess = (i: number) =>
        `${real.slice(0, -3)}${'23456789ABCDEFGH'[i % 16]}${'JKMN'[i % 4]}${real.slice(-1)}`;
      const validate = (text: string, ip: string) =>
        t.call('POST', '/v1/validations', {
          key: t.keys.checkout,
          body: checkoutBody(text, { customer: { id: `cus_guess_${ip}` }, context: { ip } }),
        });

      const alert = alertPayload('refusal_wave', { type: 'batch', id: batchId, campaign_id: campaignId });
      await raise(alert);
      const [remediation] = await remediationsOf(alert.alert_id);
      expect(remediation?.action).toBe('tighten_guessing');

      // The guesser rotates addresses inside one /48 and still counts as one caller.
      for (let i = 0; i < 3; i++) {
        const r = await validate(guess(i), `2001:db8:42:${i}::1`);
        expect(r.statusCode).toBe(200);
        expect(r.json().valid).toBe(false);
      }
      const limited = await validate(guess(3), '2001:db8:42:99::1');
      expect(limited.statusCode).toBe(429);
      expect(limited.json().reason).toBe('guessing_limit');
      // Another caller with a real code is not touched.
      const honest = await validate(real, '198.51.100.7');
      expect(honest.json().valid).toBe(true);

      await lift(remediation?.id as string);
      expect((await validate(guess(4), '2001:db8:42:100::1')).statusCode).toBe(200);
    });

    it('partner spike: pauses the partner (cap 0); lifting restores the cap it had', async () => {
      const { campaignId } = await campaignWithCode(t);
      await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        body: { codes: [{ code: unique('ACME'), partner: 'acme', max_uses: 100 }] },
      });
      await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        body: { codes: [{ code: unique('OTHER'), partner: 'other', max_uses: 100 }] },
      });
      const list = (await t.call('GET', `/v1/campaigns/${campaignId}/codes`)).json().data as {
        code: string;
        partner: string | null;
      }[];
      const acme = list.find((c) => c.partner === 'acme')?.code as string;
      const other = list.find((c) => c.partner === 'other')?.code as string;
      const capped = await t.call('PUT', `/v1/campaigns/${campaignId}/partners/acme`, {
        body: { cap: 50, reason: 'contract' },
      });
      expect(capped.statusCode, capped.body).toBe(200);

      const alert = alertPayload('redemption_spike', {
        type: 'partner',
        id: 'acme',
        campaign_id: campaignId,
      });
      await raise(alert);
      const applied = await remediationsOf(alert.alert_id);
      expect(applied.map((r) => r.action)).toEqual(['pause']);
      expect(applied[0]?.change).toMatchObject({ partner: 'acme', cap: 0, previous_cap: 50 });

      expect(refusal(await redeem(acme, {}, OLD_ACCOUNT))).toBe('partner_cap_reached');
      expect(refusal(await redeem(other, {}, OLD_ACCOUNT))).toBe('redeemed');

      await lift(applied[0]?.id as string);
      const partners = await t.call('GET', `/v1/campaigns/${campaignId}/partners`);
      expect(partners.json().data.find((p: { partner: string }) => p.partner === 'acme').cap).toBe(50);
      expect(refusal(await redeem(acme, {}, OLD_ACCOUNT))).toBe('redeemed');
    });

    it("partner spike configured to revoke: the partner's unredeemed codes are revoked, and only those come back", async () => {
      const patch = await t.call('PATCH', '/v1/remediation-policies/rpol_default_partner_spike', {
        key: fraud,
        body: { action: 'revoke_unredeemed' },
      });
      expect(patch.statusCode, patch.body).toBe(200);
      try {
        const { campaignId } = await campaignWithCode(t);
        const texts = [unique('LEAK'), unique('LEAK'), unique('LEAK')];
        await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
          body: { codes: texts.map((code) => ({ code, partner: 'leaky', max_uses: 1 })) },
        });
        // One redeemed before the alert, one revoked by hand: neither is the remediation's.
        expect(refusal(await redeem(texts[0] as string, {}, OLD_ACCOUNT))).toBe('redeemed');
        await t.call('POST', `/v1/codes/${texts[1]}/revoke`, { body: { reason: 'reported' } });

        // Through the outbox this time, as a detector's alert arrives.
        const alert = alertPayload('redemption_spike', {
          type: 'partner',
          id: 'leaky',
          campaign_id: campaignId,
        });
        await t.app.db
          .transaction()
          .execute((trx) =>
            appendEvents(
              trx,
              [{ type: 'alert.raised', aggregateId: alert.alert_id, payload: alert }],
              clock.now(),
            ),
          );
        t.app.relay.notify();
        const applied = await vi.waitFor(
          async () => {
            const rows = await remediationsOf(alert.alert_id);
            expect(rows).toHaveLength(1);
            return rows;
          },
          { timeout: 10_000, interval: 50 },
        );
        expect(applied[0]?.change).toMatchObject({ revoked: 1, partner: 'leaky' });
        expect(refusal(await redeem(texts[2] as string, {}, OLD_ACCOUNT))).toBe('code_revoked');

        await lift(applied[0]?.id as string);
        expect(refusal(await redeem(texts[2] as string, {}, OLD_ACCOUNT))).toBe('redeemed');
        // The code revoked by hand stays revoked.
        expect(refusal(await redeem(texts[1] as string, {}, OLD_ACCOUNT))).toBe('code_revoked');
      } finally {
        await t.call('PATCH', '/v1/remediation-policies/rpol_default_partner_spike', {
          key: fraud,
          body: { action: 'pause' },
        });
      }
    });

    it('a review hold makes the redemptions of the callers it reaches wait for an analyst', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const created = await t.call('POST', '/v1/remediation-policies', {
        key: fraud,
        body: {
          name: 'Hold new accounts on a spike',
          scope: { type: 'campaign', campaign_id: campaignId },
          alert_kind: 'distinct_spike',
          action: 'hold_for_review',
          params: { applies_to: ['new_accounts'], new_account_hours: 24 },
          mode: 'enforce',
          duration_seconds: 900,
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      const alert = alertPayload('distinct_spike', { type: 'campaign', id: campaignId });
      await raise(alert);
      const [applied] = await remediationsOf(alert.alert_id);
      const fresh = await redeem(code, {}, { account_created_at: '2026-06-01T06:00:00Z' });
      expect(fresh.statusCode, fresh.body).toBe(201);
      expect(fresh.json().review_status).toBe('pending');
      const old = await redeem(code, {}, OLD_ACCOUNT);
      expect(old.json().review_status).toBeNull();
      await lift(applied?.id as string);
      const after = await redeem(code, {}, { account_created_at: '2026-06-01T06:00:00Z' });
      expect(after.json().review_status).toBeNull();
    });

    it('a dry run records what it would do and changes nothing', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const created = await t.call('POST', '/v1/remediation-policies', {
        key: fraud,
        body: {
          name: 'Pause this campaign on a spike (trial)',
          scope: { type: 'campaign', campaign_id: campaignId },
          alert_kind: 'redemption_spike',
          action: 'pause',
          mode: 'dry_run',
          duration_seconds: 600,
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      const alert = alertPayload('redemption_spike', { type: 'campaign', id: campaignId });
      await raise(alert);
      // The campaign policy replaces the global defaults for this campaign's alerts.
      const applied = await remediationsOf(alert.alert_id);
      expect(applied).toHaveLength(1);
      expect(applied[0]).toMatchObject({ action: 'pause', dry_run: true, status: 'active' });
      expect(applied[0]?.change).toMatchObject({ campaign_id: campaignId, paused: true, from: 'active' });
      expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json().status).toBe('active');
      expect(refusal(await redeem(code))).toBe('redeemed');
      const audit = await t.call('GET', `/v1/audit?resource=${applied[0]?.id}`, { key: fraud });
      expect(audit.json().data.map((e: { action: string }) => e.action)).toEqual(['remediation.dry_run']);
    });

    it('expiry: the sweep ends a remediation past its expiry (once, however many nodes sweep) and undoes it', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const created = await t.call('POST', '/v1/remediation-policies', {
        key: fraud,
        body: {
          name: 'Pause on a spike',
          scope: { type: 'campaign', campaign_id: campaignId },
          alert_kind: 'redemption_spike',
          action: 'pause',
          mode: 'enforce',
          duration_seconds: 120,
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      const alert = alertPayload('redemption_spike', { type: 'campaign', id: campaignId });
      await raise(alert);
      const [applied] = await remediationsOf(alert.alert_id);
      expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json().status).toBe('paused');
      expect(refusal(await redeem(code))).toBe('campaign_paused');

      clock.advance(60_000);
      expect(await t.app.remediations.sweep()).toBe(0);
      clock.advance(61_000);
      // Two sweeps at once (two nodes): one ends it.
      const swept = await Promise.all([t.app.remediations.sweep(), t.app.remediations.sweep()]);
      expect(swept[0] + swept[1]).toBe(1);
      const after = await t.call('GET', `/v1/remediations/${applied?.id}`, { key: fraud });
      expect(after.json()).toMatchObject({ status: 'expired', undo: { resumed: true } });
      expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json().status).toBe('active');
      expect(refusal(await redeem(code))).toBe('redeemed');
      const lifted = await t.call('POST', `/v1/remediations/${applied?.id}/lift`, {
        key: fraud,
        body: { reason: 'too late' },
      });
      expect(lifted.statusCode, lifted.body).toBe(409);
      expect(lifted.json().code, lifted.body).toBe('remediation_not_active');
    });

    it('a redelivered alert acts once, also when the deliveries arrive together', async () => {
      const { campaignId } = await campaignWithCode(t);
      const alert = alertPayload('redemption_spike', { type: 'campaign', id: campaignId });
      const event = alertEvent(alert);
      await Promise.all([t.app.bus.publish(event), t.app.bus.publish(event), t.app.bus.publish(event)]);
      await t.app.bus.publish({ ...event, id: newId('event') });
      const applied = await remediationsOf(alert.alert_id);
      expect(applied.map((r) => r.action).sort()).toEqual(['require_step_up', 'throttle']);
      const audit = await t.call('GET', '/v1/audit?action=remediation.applied&limit=200', { key: fraud });
      const mine = audit
        .json()
        .data.filter((e: { resource: string }) => applied.some((r) => r.id === e.resource));
      expect(mine).toHaveLength(2);
      await vi.waitFor(() => {
        const published = events.filter(
          (e) =>
            e.type === 'remediation.applied' &&
            (e.payload as { alert_id: string }).alert_id === alert.alert_id,
        );
        expect(published).toHaveLength(2);
      });
      for (const r of applied) await lift(r.id);
    });

    it('an alert naming nothing it can act on is passed over, not retried', async () => {
      const unknown = alertPayload('redemption_spike', {
        type: 'campaign',
        id: 'cmp_00000000000000000000000000',
      });
      await raise(unknown);
      expect(await remediationsOf(unknown.alert_id)).toEqual([]);
      const noBatch = alertPayload('refusal_wave', { type: 'address_block', id: '2001:db8::/48' });
      await raise(noBatch);
      expect(await remediationsOf(noBatch.alert_id)).toEqual([]);
    });

    it('refuses bad policies with 422 and a stable reason', async () => {
      const base = {
        name: 'p',
        alert_kind: 'redemption_spike',
        action: 'throttle',
        params: { per_minute: 5 },
        mode: 'enforce',
        duration_seconds: 600,
      };
      const cases: [Record<string, unknown>, string][] = [
        [{ alert_kind: 'moon_phase' }, 'alert_kind_unknown'],
        [{ action: 'delete_everything' }, 'action_unknown'],
        [{ mode: 'maybe' }, 'mode_unknown'],
        [{ duration_seconds: 0 }, 'duration_out_of_range'],
        [{ duration_seconds: 365 * 86_400 }, 'duration_out_of_range'],
        [{ params: {} }, 'params_invalid'],
        [{ params: { per_minute: 0 } }, 'params_invalid'],
        [{ params: { per_minute: 5, burst: 2 } }, 'params_invalid'],
        [{ action: 'revoke_unredeemed', params: {}, alert_scopes: ['code'] }, 'action_not_applicable'],
        [
          { action: 'revoke_unredeemed', params: {}, alert_scopes: ['partner', 'campaign'] },
          'action_not_applicable',
        ],
        [{ scope: { type: 'campaign' } }, 'scope_invalid'],
        [{ scope: { type: 'campaign', campaign_id: 'cmp_00000000000000000000000000' } }, 'scope_invalid'],
        [{ alert_scopes: ['galaxy'] }, 'alert_scope_unknown'],
        [{ min_severity: 'urgent' }, 'severity_unknown'],
        [{ action: 'require_step_up', params: { applies_to: ['robots'] } }, 'params_invalid'],
      ];
      for (const [change, reason] of cases) {
        const r = await t.call('POST', '/v1/remediation-policies', {
          key: fraud,
          body: { ...base, ...change },
        });
        expect(r.statusCode, JSON.stringify(change)).toBe(422);
        expect(r.json()).toMatchObject({ code: 'remediation_policy_invalid', reason });
      }
      const patch = await t.call('PATCH', '/v1/remediation-policies/rpol_default_leak_spike_throttle', {
        key: fraud,
        body: { params: { per_minute: -1 } },
      });
      expect(patch.statusCode).toBe(422);
      // A lift needs a reason; policies need the fraud scope.
      const noReason = await t.call('POST', `/v1/remediations/rem_${'0'.repeat(26)}/lift`, {
        key: fraud,
        body: {},
      });
      expect(noReason.statusCode).toBe(400);
      const marketing = await t.call('GET', '/v1/remediation-policies', { key: t.keys.marketing });
      expect(marketing.statusCode).toBe(403);
    });

    it('ships the defaults and audits policy changes', async () => {
      const list = await t.call('GET', '/v1/remediation-policies', { key: fraud });
      const ids = list.json().data.map((p: { id: string }) => p.id);
      expect(ids).toEqual(
        expect.arrayContaining([
          'rpol_default_leak_spike_throttle',
          'rpol_default_leak_spike_step_up',
          'rpol_default_guessing_wave',
          'rpol_default_partner_spike',
        ]),
      );
      const audit = await t.call('GET', '/v1/audit?resource=rpol_default_partner_spike', { key: fraud });
      expect(audit.json().data.map((e: { action: string }) => e.action)).toContain(
        'remediation_policy.updated',
      );
    });

    it('no remediation without an audit entry and an expiry', async () => {
      const all = await t.call('GET', '/v1/remediations?limit=200', { key: fraud });
      const rows = all.json().data as {
        id: string;
        applied_at: string;
        expires_at: string;
        status: string;
      }[];
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) {
        expect(Date.parse(r.expires_at)).toBeGreaterThan(Date.parse(r.applied_at));
        const audit = await t.call('GET', `/v1/audit?resource=${r.id}`, { key: fraud });
        const actions = audit.json().data.map((e: { action: string }) => e.action);
        expect(actions.some((a: string) => a === 'remediation.applied' || a === 'remediation.dry_run')).toBe(
          true,
        );
        if (r.status !== 'active') expect(actions).toContain(`remediation.${r.status}`);
      }
      // Every remediation event, in its wire form, matches its published schema.
      const ajv = new Ajv2020({ strict: true, allErrors: true });
      ajv.addFormat('date-time', (x: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(x));
      for (const type of ['remediation.applied', 'remediation.lifted', 'alert.raised']) {
        const file = path.resolve(import.meta.dirname, `../../schemas/events/${type}.json`);
        ajv.addSchema(JSON.parse(readFileSync(file, 'utf8')) as object, type);
      }
      expect(new Set(events.map((e) => e.type))).toEqual(
        new Set(['remediation.applied', 'remediation.lifted']),
      );
      for (const e of [...events, alertEvent(alertPayload('refusal_wave', { type: 'batch', id: 'bat_1' }))]) {
        expect(ajv.validate(e.type, JSON.parse(JSON.stringify(toWire(e)))), ajv.errorsText()).toBe(true);
      }
      // Every remediation event names its alert and the policy that acted.
      for (const e of events)
        expect(e.payload).toMatchObject({ alert_id: expect.any(String), policy_id: expect.any(String) });
    });
  });
}
