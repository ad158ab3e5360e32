/**
 * The console in a real browser (Debian's Chromium driven by playwright-core) against the real app
 * on PGlite: sign-in, campaigns and their codes and charts, the kill switch, the customer wallet,
 * and what a person without a session or with the wrong role cannot see; XSS payloads render as text.
 * Screenshots of each main page go to artifacts/screenshots/ (gitignored; CI keeps them).
 */
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkoutBody, type TestApp, unique } from '../support/app.js';
import { ConsoleBrowser, haveBrowser, noXss, XSS } from '../support/console-browser.js';

const PORT = 20610;

describe.skipIf(!haveBrowser)('the console in a browser', () => {
  const cb = new ConsoleBrowser(PORT);
  const { base, emails } = cb;
  let t: TestApp;
  let campaignId = '';
  let firstCode = '';

  beforeAll(async () => {
    t = await cb.start({ CORS_ORIGINS: 'https://shop.example' });
  }, 240_000);
  afterAll(() => cb.close(), 60_000);
  afterEach((context) => cb.afterEach(context.task));

  const newPage = (viewport = { width: 1280, height: 800 }) => cb.newPage({ viewport });
  const signIn = (page: Page, role: string) => cb.signIn(page, role);
  const shot = (page: Page, name: string) => cb.shot(page, name);

  function redeem(code: string, customer = 'cus_browser') {
    return t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('idem') },
      body: checkoutBody(code, {
        customer: { id: customer },
        cart: { currency: 'JPY', subtotal_minor: 5000 },
      }),
    });
  }

  it('shows nothing of the console or its data without a session', async () => {
    const { context, page } = await newPage();
    await page.goto('/console/campaigns');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await page.getByRole('navigation').count()).toBe(0);
    const api = await page.evaluate(async () => (await fetch('/v1/campaigns')).status);
    expect(api).toBe(401);
    await shot(page, 'sign-in');
    await context.close();
  });

  it('signs a marketer in, creates a campaign with the API’s messages, generates codes, and the counters and chart move on a redemption', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'marketing');
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect.poll(() => nav.getByRole('link').allTextContents()).toEqual(['Campaigns', 'Approvals']);

    await page.getByRole('link', { name: 'New campaign' }).click();
    // The API's own validation message, next to its field.
    await page.getByRole('button', { name: 'Create campaign' }).click();
    const nameError = page.locator('label', { hasText: 'Name' }).locator('.field-error');
    await nameError.waitFor();
    expect(await nameError.textContent()).toMatch(/fewer than 1 character/);

    await page.getByLabel('Name').fill(`Autumn ${XSS}`);
    await page.getByLabel('Budget in minor units').fill('100000');
    await page.getByRole('button', { name: 'Create campaign' }).click();
    await page.getByRole('heading', { level: 1, name: `Autumn ${XSS}` }).waitFor();
    campaignId = page.url().split('/').pop() as string;
    expect(campaignId).toMatch(/^cmp_/);

    await page.getByLabel('How many').fill('5');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await page.getByText('5 of 5 codes generated').waitFor();
    const codes = page.getByRole('table', { name: 'Codes' }).locator('tbody tr');
    await expect.poll(() => codes.count()).toBe(5);
    firstCode = (await codes.first().locator('td').first().textContent()) as string;

    const redeemed = await redeem(firstCode);
    expect(redeemed.statusCode, redeemed.body).toBe(201);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.reload();
    await expect.poll(() => page.getByTestId('redemptions-used').textContent()).toBe('1');
    await expect.poll(() => page.getByTestId('window-redemptions').textContent()).toContain('1 redemptions');
    await page.getByRole('img', { name: '1 redemptions in the window' }).waitFor();
    await noXss(page);
    await shot(page, 'campaign');

    await page.getByRole('link', { name: 'Campaigns' }).click();
    await page.getByRole('link', { name: `Autumn ${XSS}` }).waitFor();
    await noXss(page);
    await shot(page, 'campaigns');
    await context.close();
  });

  it('pauses a campaign from on-call with a reason, and the next API redemption is refused', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'on_call');
    await page.getByRole('link', { name: 'On-call' }).click();
    await page.getByRole('region', { name: 'Live metrics' }).waitFor();
    const killSwitch = page.getByRole('form', { name: 'Kill switch' });
    await killSwitch.getByRole('combobox').first().selectOption(campaignId);
    await page.getByRole('button', { name: 'Pause campaign' }).click();
    await page.getByText('A kill switch needs a reason').waitFor();
    await page.getByLabel(/^Reason \(required/).fill('spike of new accounts');
    await page.getByRole('button', { name: 'Pause campaign' }).click();
    await page.getByText('Campaign paused').waitFor();
    await page.getByRole('button', { name: 'Resume' }).waitFor();

    const refused = await redeem(firstCode, 'cus_after_pause');
    expect(refused.statusCode).toBe(422);
    expect(refused.json().code).toBe('redemption_refused');
    await noXss(page);
    await shot(page, 'on-call');
    await context.close();
  });

  it('keeps finance and admin away from a fraud analyst, in the navigation and at the API', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'fraud');
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    expect(links).not.toContain('Finance');
    expect(links).not.toContain('Campaigns');
    await page.goto('/console/finance');
    await page.getByRole('heading', { name: 'Not for your role' }).waitFor();
    const statuses = await page.evaluate(async () => [
      (await fetch('/v1/reconciliations')).status,
      (await fetch('/v1/console-users')).status,
      (await fetch('/v1/api-keys')).status,
    ]);
    expect(statuses).toEqual([403, 403, 403]);
    await context.close();
  });

  it('works a review case to a label; customer ids and notes render as text', async () => {
    // A campaign whose every redemption goes to review.
    const made = await t.call('POST', '/v1/campaigns', {
      body: {
        name: 'Reviewed',
        currency: 'JPY',
        discount: { type: 'fixed_amount', amount_minor: 300 },
        status: 'active',
        starts_at: '2020-01-01T00:00:00Z',
      },
    });
    const reviewed = made.json().id as string;
    const code = `REV${unique('c')
      .replace(/[^A-Z0-9]/gi, '')
      .toUpperCase()}`;
    expect((await t.call('POST', `/v1/campaigns/${reviewed}/codes`, { body: { code } })).statusCode).toBe(
      201,
    );
    const rule = await t.call('POST', '/v1/rules', {
      body: {
        name: 'everything to review',
        expression: 'true',
        action: 'review',
        reason: 'manual check',
        mode: 'enforce',
        campaign_id: reviewed,
      },
    });
    expect(rule.statusCode, rule.body).toBe(201);
    await expect
      .poll(async () => (await redeem(code, `cus_${XSS}`)).statusCode, { timeout: 10_000 })
      .toBe(201);

    const { context, page } = await newPage();
    await signIn(page, 'fraud');
    await page.getByRole('link', { name: 'Review queue' }).click();
    await page.getByRole('button', { name: 'Next case' }).click();
    await page.getByRole('article').getByText(`cus_${XSS}`).first().waitFor();
    await page.getByLabel('Note').fill(`ring ${XSS}`);
    await shot(page, 'review-queue');
    await page.getByRole('button', { name: 'Reject (rolls it back)' }).click();
    await page.getByText('The queue is empty').waitFor();

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('table', { name: 'Audit entries' }).waitFor();
    await noXss(page);
    await shot(page, 'audit');

    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByLabel('Expression (CEL)').fill('features.no_such_feature > 1');
    await page.locator('#cel-check.check-bad').waitFor();
    await page.getByLabel('Expression (CEL)').fill('true');
    await page.locator('#cel-check.check-ok').waitFor();
    await page.getByRole('button', { name: 'everything to review' }).click();
    await page.getByRole('button', { name: 'Run backtest' }).click();
    await page.getByRole('table', { name: 'Confusion matrix' }).waitFor();
    await shot(page, 'rules');
    await context.close();
  });

  it('shows finance its reconciliation reports, and goes back to sign-in when the session ends', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'finance');
    await page.getByRole('link', { name: 'Finance' }).click();
    await page.getByRole('button', { name: 'Run a reconciliation now' }).click();
    await page.getByRole('article').waitFor();
    await shot(page, 'finance');

    // An admin disables the person: the session is over, and the next call brings the sign-in form back.
    const users = (await t.call('GET', '/v1/console-users')).json().data as { id: string; email: string }[];
    const finance = users.find((u) => u.email === emails['finance']) as { id: string };
    const disabled = await t.call('PATCH', `/v1/console-users/${finance.id}`, { body: { disabled: true } });
    expect(disabled.statusCode, disabled.body).toBe(200);
    await page.getByRole('button', { name: 'Run a reconciliation now' }).click();
    await page.getByText('Your session ended. Sign in again to go on.').waitFor();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await context.close();
  });

  it('renders the wallet for a customer at 390 px, converts points into a coupon and copies its code', async () => {
    const customer = unique('cus_wallet');
    const program = await t.call('POST', '/v1/points-programs', {
      body: { name: 'Points', currency: 'JPY', min_points: 100, step_points: 100 },
    });
    expect(program.statusCode, program.body).toBe(201);
    const credit = await t.call('POST', `/v1/customers/${customer}/points`, {
      key: t.keys.checkout,
      headers: { 'idempotency-key': unique('idem') },
      body: { type: 'credit', points: 1000, reason: 'order 1' },
    });
    expect(credit.statusCode, credit.body).toBe(201);
    const issued = await t.call('POST', '/v1/customer-tokens', {
      key: t.keys.checkout,
      body: { customer_id: customer },
    });
    const token = issued.json().token as string;

    const { context, page } = await newPage({ width: 390, height: 844 });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await page.goto(`/console/wallet.html#token=${token}&program=${program.json().id}&locale=ja-JP`);
    await page.getByText('まだクーポンはありません').waitFor();
    expect(page.url()).not.toContain(token);
    await expect.poll(() => page.getByTestId('balance').textContent()).toBe('1,000');

    const points = page.getByLabel('交換するポイント');
    await points.fill('150');
    await page.getByRole('button', { name: '交換する' }).click();
    await page.getByText('100ポイント単位で交換してください').waitFor();
    await points.fill('500');
    await page.getByRole('button', { name: '交換する' }).click();
    await page.getByText(/500ポイントを￥500のクーポンに交換しました/).waitFor();
    await expect.poll(() => page.getByTestId('balance').textContent()).toBe('500');
    const coupon = page.locator('li.coupon').first();
    await coupon.getByText('￥500引き').waitFor();
    await coupon.getByText('未使用').waitFor();
    const code = (await coupon.getAttribute('data-code')) as string;
    await coupon.getByRole('button', { name: /コードをコピー/ }).click();
    await coupon.getByRole('button', { name: /コピーしました/ }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(code);
    // Fits a phone: nothing wider than the viewport.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'wallet-390');

    // The same wallet in English: amounts per locale, the usage guide, the convert rules. (A fresh
    // document: a change of the fragment alone would not load the page again.)
    await page.goto('about:blank');
    await page.goto(`/console/wallet.html#token=${token}&program=${program.json().id}&locale=en-US`);
    await page.locator('li.coupon').first().getByText('¥500 off').waitFor();
    await page.getByRole('heading', { name: 'How to use a coupon' }).waitFor();
    await shot(page, 'wallet-390-en');
    await context.close();
  });
});
