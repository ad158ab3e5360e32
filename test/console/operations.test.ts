/**
 * The console's operations pages in a real browser (Debian's Chromium driven by playwright-core)
 * against the real app on PGlite: on-call acknowledges an alert and lifts a remediation; an admin
 * creates a console user and an API key (its secret shown once) while a fraud analyst sees neither
 * page and is refused by the API; finance reads spend by campaign and downloads it as CSV; marketing
 * imports a CSV of codes with its refused rows listed, reads the new-account share, and approves a
 * change waiting for a second person. Screenshots (1280×800) go to artifacts/screenshots/.
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlert } from '../../src/store/alerts.js';
import { campaignBody, checkoutBody, type TestApp, unique } from '../support/app.js';
import { ConsoleBrowser, haveBrowser, noXss, PASSWORD, XSS } from '../support/console-browser.js';

const PORT = 20613;

describe.skipIf(!haveBrowser)('the console’s operations pages in a browser', () => {
  const cb = new ConsoleBrowser(PORT);
  const { emails } = cb;
  let t: TestApp;
  let campaignId = '';
  let campaignName = '';

  beforeAll(async () => {
    // Two-person approval on (as in production): the campaigns here have budgets, so only the one
    // made to wait does.
    t = await cb.start({ APPROVALS: 'on' });
    campaignName = `Spring ${XSS}`;
    const made = await t.call('POST', '/v1/campaigns', {
      body: campaignBody({
        name: campaignName,
        currency: 'JPY',
        discount: { type: 'fixed_amount', amount_minor: 500 },
        budget_minor: 1_000_000,
      }),
    });
    expect(made.statusCode, made.body).toBe(201);
    campaignId = made.json().id;
    const code = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
      body: { code: 'SPRINGPUBLIC', max_uses: 1000 },
    });
    expect(code.statusCode, code.body).toBe(201);
    // Three redemptions: two by accounts an hour old, one by an account of 2020.
    for (const created of ['new', 'new', '2020-01-01T00:00:00Z']) {
      const at = created === 'new' ? new Date(Date.now() - 3_600_000).toISOString() : created;
      const res = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('idem') },
        body: checkoutBody('SPRINGPUBLIC', {
          customer: { id: unique('cus') },
          cart: { currency: 'JPY', subtotal_minor: 5000 },
          context: { account_created_at: at },
        }),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
  }, 240_000);

  afterAll(() => cb.close(), 60_000);
  afterEach((context) => cb.afterEach(context.task));

  const newPage = () => cb.newPage({ acceptDownloads: true });
  const signIn = (page: Page, role: string) => cb.signIn(page, role);
  const shot = (page: Page, name: string) => cb.shot(page, name);

  it('on-call acknowledges an alert and lifts the remediation it set off, with a reason', async () => {
    const now = new Date();
    const alert = await raiseAlert(
      t.app.db,
      {
        kind: 'redemption_spike',
        detectorKey: `redemption_spike:campaign:${campaignId}`,
        episodeStart: new Date(now.getTime() - 300_000),
        scope: { type: 'campaign', id: campaignId, campaignId, partner: null, batchId: null },
        severity: 'page',
        observed: 42,
        expected: 3,
        intervalSeconds: 60,
        details: {},
        triggeredByEventId: null,
        triggeredAt: now,
      },
      now,
    );
    expect(alert).not.toBeNull();
    const alertId = alert?.id as string;
    // The default policies throttle the campaign and ask new and guest customers for a step-up.
    await expect
      .poll(
        async () =>
          (await t.call('GET', `/v1/remediations?alert_id=${alertId}&status=active`)).json().data.length,
        { timeout: 15_000 },
      )
      .toBe(2);

    const { context, page } = await newPage();
    await signIn(page, 'on_call');
    await page.getByRole('link', { name: 'On-call' }).click();
    const alerts = page.getByRole('table', { name: 'Alerts' });
    const row = alerts.locator(`tr[data-alert="${alertId}"]`);
    await row.getByText('redemption spike').waitFor();
    await row.getByText('42 / 3 per 1 min').waitFor();
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await row.getByText('acknowledged', { exact: true }).waitFor();
    expect(await row.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);

    const remediations = page.getByRole('table', { name: 'Remediations' });
    const throttle = remediations.locator('tr', { hasText: 'throttle' });
    await throttle.getByRole('button', { name: 'Lift' }).click();
    await page.getByText('Lifting needs a reason').waitFor();
    await page.getByLabel(/^Reason for a lift/).fill('checked with marketing: a planned mailing');
    await shot(page, 'on-call-alerts');
    await throttle.getByRole('button', { name: 'Lift' }).click();
    await page.getByText(/Lifted throttle on campaign/).waitFor();
    await expect.poll(() => remediations.locator('tbody tr').count()).toBe(1);
    await noXss(page);

    const acked = (await t.call('GET', `/v1/alerts/${alertId}`)).json();
    expect(acked.status).toBe('acknowledged');
    const users = (await t.call('GET', '/v1/console-users')).json().data as { id: string; email: string }[];
    expect(acked.acknowledged_by).toBe(users.find((u) => u.email === emails['on_call'])?.id);
    const lifted = (await t.call('GET', `/v1/remediations?alert_id=${alertId}&status=lifted`)).json().data;
    expect(lifted).toEqual([
      expect.objectContaining({
        action: 'throttle',
        end_reason: 'checked with marketing: a planned mailing',
      }),
    ]);
    await context.close();
  });

  it('lets an admin create a console user and an API key whose secret is shown once', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'admin');
    await page.getByRole('link', { name: 'Users' }).click();
    const email = `new.${unique('u').toLowerCase()}@example.com`;
    const form = page.getByRole('form', { name: 'New console user' });
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Role').selectOption('finance');
    await form.getByLabel('First password').fill('short');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.locator('.field-error').first().waitFor();
    await form.getByLabel('First password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.getByText(`${email} can sign in now as Finance`).waitFor();
    const row = page.getByRole('table', { name: 'Console users' }).locator(`tr[data-user="${email}"]`);
    await row.waitFor();
    await row.getByLabel(`Role of ${email}`).selectOption('marketing');
    await expect
      .poll(async () => {
        const all = (await t.call('GET', '/v1/console-users')).json().data as {
          email: string;
          role: string;
        }[];
        return all.find((u) => u.email === email)?.role;
      })
      .toBe('marketing');
    await row.getByRole('button', { name: 'Disable' }).click();
    await row.getByText('disabled').waitFor();
    await row.getByRole('button', { name: 'Enable' }).click();
    await row.getByText('active').waitFor();
    await shot(page, 'admin-users');

    await page.getByRole('link', { name: 'API keys' }).click();
    const keyForm = page.getByRole('form', { name: 'New API key' });
    const name = `shop backend ${unique('k')}`;
    await keyForm.getByLabel('Key name').fill(name);
    await keyForm.getByLabel('fraud').check();
    await keyForm.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.getByTestId('new-secret').textContent()) as string;
    expect(secret.length).toBeGreaterThan(20);
    await page.getByRole('table', { name: 'API keys' }).locator(`tr[data-key="${name}"]`).waitFor();
    // The secret works as a key with the chosen scopes, and is nowhere in the list.
    expect((await t.call('GET', '/v1/campaigns', { key: secret })).statusCode).toBe(200);
    expect((await t.call('GET', '/v1/rules', { key: secret })).statusCode).toBe(200);
    expect((await t.call('GET', '/v1/api-keys', { key: secret })).statusCode).toBe(403);
    expect(JSON.stringify((await t.call('GET', '/v1/api-keys')).json())).not.toContain(secret);
    await shot(page, 'admin-api-keys');

    const keyRow = page.getByRole('table', { name: 'API keys' }).locator(`tr[data-key="${name}"]`);
    await keyRow.getByRole('button', { name: 'Revoke' }).click();
    await keyRow.getByText(/revoked/).waitFor();
    await expect
      .poll(async () => (await t.call('GET', '/v1/rules', { key: secret })).statusCode, { timeout: 10_000 })
      .toBe(401);
    await page.reload();
    expect(await page.getByTestId('new-secret').count()).toBe(0);
    await context.close();
  });

  it('keeps the admin pages and routes from a fraud analyst', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'fraud');
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    expect(links).not.toContain('Users');
    expect(links).not.toContain('API keys');
    for (const address of ['/console/admin/users', '/console/admin/api-keys']) {
      await page.goto(address);
      await page.getByRole('heading', { name: 'Not for your role' }).waitFor();
    }
    const answers = await page.evaluate(async () => {
      const csrf = ((await (await fetch('/v1/session')).json()) as { csrf_token: string }).csrf_token;
      const write = (method: string, url: string, body: unknown) =>
        fetch(url, {
          method,
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: JSON.stringify(body),
        }).then(async (r) => [r.status, ((await r.json()) as { code: string }).code]);
      return [
        [(await fetch('/v1/console-users')).status],
        [(await fetch('/v1/api-keys')).status],
        [(await fetch('/v1/finance/spend')).status],
        await write('POST', '/v1/api-keys', { name: 'mine', scopes: ['admin'] }),
        await write('POST', '/v1/console-users', {
          email: 'me.too@example.com',
          role: 'admin',
          password: 'correct horse battery staple',
        }),
      ];
    });
    expect(answers).toEqual([[403], [403], [403], [403, 'forbidden'], [403, 'forbidden']]);
    await context.close();
  });

  it('shows finance the spend by campaign and period, and downloads it as CSV', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'finance');
    await page.getByRole('link', { name: 'Finance' }).click();
    const table = page.getByRole('table', { name: 'Spend by campaign' });
    const row = table.locator('tr', { hasText: campaignName });
    await row.waitFor();
    // Three redemptions of ¥500 today, in yen as the reader's locale writes it.
    await row.getByText('¥1,500').first().waitFor();
    await page.getByTestId('spend-total-JPY').waitFor();
    await page.getByRole('img', { name: /Net discount spend in JPY by campaign and day/ }).waitFor();
    await page.getByLabel('Period').selectOption('month');
    await page.getByRole('columnheader', { name: 'Month' }).waitFor();
    await noXss(page);
    await shot(page, 'finance-spend');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export spend CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^spend-month-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toBe(
      'period_start,campaign_id,campaign_name,currency,spent_minor,reversed_minor,net_minor,redemptions,reversals',
    );
    const line = csv.find((l) => l.includes(campaignId));
    expect(line).toMatch(/,JPY,1500,0,1500,3,0$/);
    await context.close();
  });

  it('lets marketing import a CSV of codes, listing the refused rows, and read the new-account share', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'marketing');
    await page.goto(`/console/campaigns/${campaignId}`);
    await expect
      .poll(() => page.getByTestId('new-account-share').textContent())
      .toContain('67 % of redemptions (2 of 3 with an account age)');
    await page.getByRole('img', { name: /67 % of redemptions by new accounts/ }).waitFor();
    await page.getByRole('heading', { name: 'New-account share' }).evaluate((h) => h.scrollIntoView());
    await shot(page, 'campaign-new-accounts');

    const fresh = unique('IMP').replace(/[^A-Z0-9]/g, '');
    const file = [
      'code,customer_id,max_uses,partner',
      `${fresh}A,,1,`,
      'SPRINGPUBLIC,,1,',
      `${fresh}B,cus_1,0,`,
      `"${fresh}C",,5,newsletter`,
      `${fresh}D,,,`,
    ].join('\n');
    const form = page.getByRole('form', { name: 'Import codes' });
    await form.getByLabel('CSV file').setInputFiles({
      name: 'codes.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(file),
    });
    await form.getByRole('button', { name: 'Import' }).click();
    await form.getByText('5 of 5 rows read: 3 codes imported, 2 rows refused').waitFor();
    const refused = form.getByRole('table', { name: 'Refused rows' }).locator('tbody tr');
    expect(await refused.allTextContents()).toEqual([
      expect.stringMatching(/^3SPRINGPUBLICalready exists/),
      expect.stringMatching(new RegExp(`^4${fresh}Bmax_uses must be a whole number from 1`)),
    ]);
    await form.scrollIntoViewIfNeeded();
    await shot(page, 'campaign-import');

    const codes = (await t.call('GET', `/v1/campaigns/${campaignId}/codes?limit=100`)).json().data as {
      code: string;
      max_uses: number | null;
      partner: string | null;
    }[];
    expect(codes.filter((c) => c.code.startsWith(fresh)).map((c) => [c.code, c.max_uses, c.partner])).toEqual(
      expect.arrayContaining([
        [`${fresh}A`, 1, null],
        [`${fresh}C`, 5, 'newsletter'],
        [`${fresh}D`, null, null],
      ]),
    );
    expect(codes.filter((c) => c.code.startsWith(fresh))).toHaveLength(3);
    await context.close();
  });

  it('lets marketing approve a campaign waiting for a second person', async () => {
    // No cap and no budget: the admin key's new campaign waits as a draft.
    const made = await t.call('POST', '/v1/campaigns', { body: campaignBody({ name: `Open-ended ${XSS}` }) });
    expect(made.statusCode, made.body).toBeLessThan(300);
    const waiting = (await t.call('GET', '/v1/approvals?status=pending')).json().data as {
      id: string;
      target_id: string;
    }[];
    expect(waiting).toHaveLength(1);
    const target = waiting[0]?.target_id as string;
    expect((await t.call('GET', `/v1/campaigns/${target}`)).json().status).toBe('draft');

    const { context, page } = await newPage();
    await signIn(page, 'marketing');
    await page.getByRole('link', { name: 'Approvals' }).click();
    const card = page.getByRole('article', { name: `Approval ${waiting[0]?.id}` });
    await card.getByText('neither a cap nor a budget').waitFor();
    await card.getByRole('link', { name: `Open-ended ${XSS}` }).waitFor();
    await card.getByLabel(/^Note/).fill('budget agreed by phone');
    await noXss(page);
    await shot(page, 'approvals');
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Nothing waits for a second person.').waitFor();
    expect((await t.call('GET', `/v1/campaigns/${target}`)).json().status).toBe('active');
    await context.close();
  });
});
