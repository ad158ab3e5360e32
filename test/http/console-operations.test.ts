/**
 * The routes behind the console's operations pages, through the real app on each store: finance's
 * spend by campaign and period from the ledger (JSON and CSV, scopes, bad windows), the new-account
 * share in a campaign's series, and an admin unlocking a console user locked by wrong passwords.
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

const PASSWORD = 'correct horse battery staple';

describe.each(backends.map((b) => [b.name, b] as const))(
  'console operations routes on %s',
  (_name, backend) => {
    let t: TestApp;
    const clock = new TestClock(new Date('2026-03-02T10:00:00Z'));
    let financeKey: string;
    let fraudKey: string;

    beforeAll(async () => {
      t = await startTestApp(backend, {
        clock,
        env: { CONSOLE_PASSWORD_SCRYPT_LOG_N: '14', CONSOLE_LOCKOUT_AFTER_FAILURES: '3' },
      });
      financeKey = (await t.app.apiKeys.create('finance', ['finance'], 'test')).secret;
      fraudKey = (await t.app.apiKeys.create('fraud', ['fraud'], 'test')).secret;
    }, 120_000);
    afterAll(async () => t?.close());

    const redeem = (code: string, context?: Record<string, unknown>, currency = 'USD') =>
      t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('idem') },
        body: checkoutBody(code, {
          customer: { id: unique('cus') },
          cart: { currency, subtotal_minor: 10_000 },
          ...(context ? { context } : {}),
        }),
      });
    const rollback = (id: string) =>
      t.call('POST', `/v1/redemptions/${id}/rollback`, {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('idem') },
        body: {},
      });

    describe('spend by campaign and period', () => {
      let first: { campaignId: string; code: string };
      let second: { campaignId: string; code: string };
      const window = 'from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z';

      beforeAll(async () => {
        first = await campaignWithCode(t, { name: '=HYPERLINK("x")' }, { max_uses: 100 });
        second = await campaignWithCode(
          t,
          { currency: 'JPY', discount: { type: 'fixed_amount', amount_minor: 300 } },
          { max_uses: 100 },
        );
        // Monday 2 March: two redemptions of 500 USD cents, one of ¥300.
        clock.set('2026-03-02T10:00:00Z');
        const a = await redeem(first.code);
        expect(a.statusCode, a.body).toBe(201);
        expect((await redeem(first.code)).statusCode).toBe(201);
        const yen = await redeem(second.code, undefined, 'JPY');
        expect(yen.statusCode, yen.body).toBe(201);
        // A reversal counts in the period it is made, not in its redemption's: a second day with one
        // redemption and the reversal of a first-day one.
        clock.set('2026-03-04T09:00:00Z');
        expect((await redeem(first.code)).statusCode).toBe(201);
        expect((await rollback(a.json().id)).statusCode).toBe(200);
        // 10 March, the next week: ¥300 more.
        clock.set('2026-03-10T12:00:00Z');
        expect((await redeem(second.code, undefined, 'JPY')).statusCode).toBe(201);
      });

      it('sums the ledger by day: a redemption on its day, a rollback on the day it was rolled back', async () => {
        const res = await t.call('GET', `/v1/finance/spend?${window}&period=day`, { key: financeKey });
        expect(res.statusCode, res.body).toBe(200);
        const mine = res
          .json()
          .data.filter((r: { campaign_id: string }) =>
            [first.campaignId, second.campaignId].includes(r.campaign_id),
          )
          // Rows of one period come in campaign id order; the two ids were made in the same millisecond.
          .sort(
            (
              a: { period_start: string; campaign_id: string },
              b: { period_start: string; campaign_id: string },
            ) =>
              a.period_start.localeCompare(b.period_start) ||
              Number(a.campaign_id !== first.campaignId) - Number(b.campaign_id !== first.campaignId),
          );
        expect(mine).toEqual([
          {
            period_start: '2026-03-02T00:00:00.000Z',
            campaign_id: first.campaignId,
            campaign_name: '=HYPERLINK("x")',
            currency: 'USD',
            spent_minor: 1000,
            reversed_minor: 0,
            net_minor: 1000,
            redemptions: 2,
            reversals: 0,
          },
          expect.objectContaining({
            period_start: '2026-03-02T00:00:00.000Z',
            campaign_id: second.campaignId,
            currency: 'JPY',
            spent_minor: 300,
            net_minor: 300,
          }),
          expect.objectContaining({
            period_start: '2026-03-04T00:00:00.000Z',
            campaign_id: first.campaignId,
            spent_minor: 500,
            reversed_minor: 500,
            net_minor: 0,
            redemptions: 1,
            reversals: 1,
          }),
          expect.objectContaining({
            period_start: '2026-03-10T00:00:00.000Z',
            campaign_id: second.campaignId,
            net_minor: 300,
          }),
        ]);
        // Totals per currency, never across currencies; they match the campaigns' own counters.
        const totals = res.json().totals as { currency: string; net_minor: number }[];
        const usd = (await t.call('GET', `/v1/campaigns/${first.campaignId}`)).json().spent_minor;
        expect(usd).toBe(1000);
        expect(totals.map((x) => x.currency)).toEqual(expect.arrayContaining(['JPY', 'USD']));
      });

      it('groups by ISO week (Monday) and by month, and keeps to one campaign when asked', async () => {
        const weeks = await t.call(
          'GET',
          `/v1/finance/spend?${window}&period=week&campaign_id=${second.campaignId}`,
          { key: financeKey },
        );
        expect(weeks.statusCode, weeks.body).toBe(200);
        expect(
          weeks
            .json()
            .data.map((r: { period_start: string; net_minor: number }) => [r.period_start, r.net_minor]),
        ).toEqual([
          ['2026-03-02T00:00:00.000Z', 300],
          ['2026-03-09T00:00:00.000Z', 300],
        ]);
        expect(weeks.json().totals).toEqual([
          { currency: 'JPY', spent_minor: 600, reversed_minor: 0, net_minor: 600 },
        ]);

        const months = await t.call(
          'GET',
          `/v1/finance/spend?${window}&period=month&campaign_id=${first.campaignId}`,
          { key: financeKey },
        );
        expect(months.json().data).toEqual([
          expect.objectContaining({
            period_start: '2026-03-01T00:00:00.000Z',
            spent_minor: 1500,
            reversed_minor: 500,
            net_minor: 1000,
            redemptions: 3,
            reversals: 1,
          }),
        ]);
      });

      it('exports CSV with money in minor units and a campaign name kept out of formulas', async () => {
        const res = await t.call(
          'GET',
          `/v1/finance/spend?${window}&period=month&campaign_id=${first.campaignId}&format=csv`,
          { key: financeKey },
        );
        expect(res.statusCode, res.body).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/csv/);
        expect(res.headers['content-disposition']).toBe(
          'attachment; filename="spend-month-2026-03-01-2026-04-01.csv"',
        );
        expect(res.body.trim().split('\n')).toEqual([
          'period_start,campaign_id,campaign_name,currency,spent_minor,reversed_minor,net_minor,redemptions,reversals',
          `2026-03-01T00:00:00.000Z,${first.campaignId},"'=HYPERLINK(""x"")",USD,1500,500,1000,3,1`,
        ]);
      });

      it('refuses other scopes, a backwards or too long window, a bad period and unknown fields', async () => {
        expect((await t.call('GET', '/v1/finance/spend', { key: fraudKey })).statusCode).toBe(403);
        expect((await t.call('GET', '/v1/finance/spend', { key: t.keys.marketing })).statusCode).toBe(403);
        expect((await t.call('GET', '/v1/finance/spend', { key: null })).statusCode).toBe(401);
        expect((await t.call('GET', '/v1/finance/spend')).statusCode).toBe(200);
        for (const query of [
          'from=2026-04-01T00:00:00Z&to=2026-03-01T00:00:00Z',
          'from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&period=day',
          'period=year',
          'campaign_id=nope',
          'limit=5',
          'from=yesterday',
        ]) {
          const res = await t.call('GET', `/v1/finance/spend?${query}`, { key: financeKey });
          expect(res.statusCode, query).toBe(400);
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.json().code, query).toBe('validation_failed');
        }
        // Six years by month is a bounded read and allowed.
        const long = await t.call(
          'GET',
          '/v1/finance/spend?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&period=month',
          { key: financeKey },
        );
        expect(long.statusCode, long.body).toBe(200);
      });
    });

    it('counts redemptions by new accounts in the campaign series', async () => {
      const { campaignId, code } = await campaignWithCode(t, {}, { max_uses: 100 });
      clock.set('2026-05-01T10:00:00Z');
      // 2 hours old, 3 days old, and no age sent: one new account of two known ages.
      expect((await redeem(code, { account_created_at: '2026-05-01T08:00:00Z' })).statusCode).toBe(201);
      expect((await redeem(code, { account_created_at: '2026-04-28T10:00:00Z' })).statusCode).toBe(201);
      expect((await redeem(code)).statusCode).toBe(201);
      const res = await t.call(
        'GET',
        `/v1/campaigns/${campaignId}/series?from=2026-05-01T00:00:00Z&to=2026-05-02T00:00:00Z&bucket=day`,
        { key: fraudKey },
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().new_account_hours).toBe(24);
      expect(res.json().points).toEqual([
        expect.objectContaining({ redemptions: 3, new_accounts: 1, account_age_known: 2 }),
      ]);
    });

    it('lets an admin unlock a console user locked by wrong passwords; nobody else may', async () => {
      const email = `locked.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email, role: 'finance', password: PASSWORD },
      });
      expect(made.statusCode, made.body).toBe(201);
      const signIn = (password: string) =>
        t.server.inject({
          method: 'POST',
          url: '/v1/session',
          headers: { origin: 'http://localhost' },
          payload: { email, password },
        });
      for (let i = 0; i < 3; i++) expect((await signIn('not the password at all')).statusCode).toBe(401);
      expect((await signIn(PASSWORD)).statusCode).toBe(401);
      const id = made.json().id as string;
      expect((await t.call('GET', `/v1/console-users/${id}`)).json().locked_until).not.toBeNull();

      for (const key of [fraudKey, financeKey, t.keys.marketing]) {
        const refused = await t.call('PATCH', `/v1/console-users/${id}`, { key, body: { unlock: true } });
        expect(refused.statusCode).toBe(403);
      }
      const bad = await t.call('PATCH', `/v1/console-users/${id}`, { body: { unlock: false } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe('validation_failed');

      const unlocked = await t.call('PATCH', `/v1/console-users/${id}`, { body: { unlock: true } });
      expect(unlocked.statusCode, unlocked.body).toBe(200);
      expect(unlocked.json().locked_until).toBeNull();
      expect((await signIn(PASSWORD)).statusCode).toBe(201);
      const audit = await t.call('GET', `/v1/audit?resource=${id}&action=console_user.updated`);
      expect(audit.json().data[0].details.changes).toEqual({
        locked_until: { from: expect.any(String), to: null },
      });
    });
  },
);
