/**
 * The fraud analyst's Rules and Lists pages in a real browser (Debian's Chromium driven by
 * playwright-core) against the real app on PGlite: hit rates per rule, editing a rule through a type
 * error (shown at its line and column) to a saved fix, disabling and enabling it, what a shadow rule
 * would have changed, a backtest whose confusion-matrix cells open their decisions, a list entry added
 * with an expiry and removed again; a marketer reaches neither page nor their API. XSS payloads in a
 * rule name and a list reason render as text. Screenshots go to artifacts/screenshots/.
 */
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkoutBody, type TestApp, unique } from '../support/app.js';
import { ConsoleBrowser, haveBrowser, noXss, XSS } from '../support/console-browser.js';

const PORT = 20612;

describe.skipIf(!haveBrowser)('the Rules and Lists pages in a browser', () => {
  const cb = new ConsoleBrowser(PORT);
  let t: TestApp;
  const shadowName = `Mid carts ${XSS}`;
  let shadowRule = '';
  /** Decisions in the order made: subtotals 10k, 20k, 35k, 45k, 60k, 90k. */
  const decisions: string[] = [];

  beforeAll(async () => {
    t = await cb.start();

    // One campaign, a shadow rule (named with an XSS payload) and an enforced one, six labeled attempts.
    const made = await t.call('POST', '/v1/campaigns', {
      body: {
        name: 'Rules page',
        currency: 'JPY',
        discount: { type: 'fixed_amount', amount_minor: 300 },
        status: 'active',
        starts_at: '2020-01-01T00:00:00Z',
      },
    });
    expect(made.statusCode, made.body).toBe(201);
    const campaignId = made.json().id as string;
    const code = `RUL${unique('c')
      .replace(/[^A-Z0-9]/gi, '')
      .toUpperCase()}`;
    expect((await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code } })).statusCode).toBe(
      201,
    );
    const rule = async (body: Record<string, unknown>) => {
      const r = await t.call('POST', '/v1/rules', { body: { campaign_id: campaignId, ...body } });
      expect(r.statusCode, r.body).toBe(201);
      return r.json().id as string;
    };
    shadowRule = await rule({
      name: shadowName,
      expression: 'order.subtotal_minor >= 30000',
      action: 'block',
      mode: 'shadow',
      reason: 'mid-size carts',
    });
    await rule({
      name: 'Huge carts',
      expression: 'order.subtotal_minor >= 80000',
      action: 'review',
      mode: 'enforce',
      reason: 'huge carts',
    });
    // Rules apply to requests begun 2 s after their commit.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const set: [number, 'abuse' | 'legitimate' | null][] = [
      [10_000, 'legitimate'],
      [20_000, 'abuse'],
      [35_000, 'abuse'],
      [45_000, 'legitimate'],
      [60_000, null],
      [90_000, 'abuse'],
    ];
    for (const [subtotal, label] of set) {
      const r = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('idem') },
        body: checkoutBody(code, {
          customer: { id: unique('cus_rules') },
          cart: { currency: 'JPY', subtotal_minor: subtotal },
        }),
      });
      expect(r.statusCode, r.body).toBe(201);
      const id = r.json().decision.id as string;
      decisions.push(id);
      if (label) {
        const l = await t.call('POST', `/v1/decisions/${id}/label`, { body: { label } });
        expect(l.statusCode, l.body).toBe(200);
      }
    }
    await t.app.risk.settled();
  }, 240_000);

  afterAll(() => cb.close(), 60_000);
  afterEach((context) => cb.afterEach(context.task));

  const newPage = () => cb.newPage();
  const signIn = (page: Page, role: string) => cb.signIn(page, role);
  const shot = (page: Page, name: string) => cb.shot(page, name);

  it('shows hit rates, edits a rule through a type error to a fix, and backtests it down to the decisions of a cell', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'fraud');
    await page.getByRole('link', { name: 'Rules' }).click();

    // Hit rates: the shadow rule fired on 4 of the 6 decisions, the enforced one on 1.
    const row = page.locator(`tr[data-rule="${shadowRule}"]`);
    await expect.poll(() => row.getByTestId('hit-rate').textContent()).toBe('66.7 % of 6');
    expect(await row.locator('td').nth(4).textContent()).toBe('4');
    const huge = page.getByRole('row').filter({ hasText: 'Huge carts' });
    await expect.poll(() => huge.getByTestId('hit-rate').textContent()).toBe('16.7 % of 6');
    await noXss(page);
    await shot(page, 'rules-hit-rates');

    // The name is text, the button is the way into the rule.
    await page.getByRole('button', { name: shadowName }).click();
    await page.getByRole('heading', { name: 'Edit rule' }).waitFor();
    await page.getByRole('heading', { level: 2, name: shadowName }).waitFor();

    // What the shadow rule would have changed: 3 allowed attempts blocked, a held one blocked instead.
    const summary = page.getByTestId('shadow-summary');
    await expect
      .poll(() => summary.textContent())
      .toBe(
        'Enforced, it would have changed 4 of the 4 decisions it fired on: 3 allow → block, 1 review → block',
      );
    await page.getByRole('table', { name: 'Shadow comparison' }).waitFor();

    // Typed key by key, the expression is checked once the typing pauses, not per key.
    const checks: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/v1/rules/check')) checks.push(request.postData() ?? '');
    });
    const expression = page.getByLabel('Expression (CEL)');
    await expression.fill('');
    await expression.pressSequentially('order.subtotal_minor >= 40000 &&\n  features.no_such_feature > 1', {
      delay: 15,
    });
    const status = page.locator('#cel-check');
    await page.locator('#cel-check.check-bad').waitFor();
    expect(await status.textContent()).toBe('Line 2, column 3: No such key: no_such_feature');
    expect(await page.getByTestId('cel-place').textContent()).toBe(
      `  features.no_such_feature > 1\n  ${'^'.repeat(24)}`,
    );
    expect(await expression.getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByRole('button', { name: 'Save changes' }).isDisabled()).toBe(true);
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.length).toBeLessThanOrEqual(3);

    await expression.fill('order.subtotal_minor >= 40000');
    await page.locator('#cel-check.check-ok').waitFor();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Rule saved; it applies to requests begun 2 s from now.').waitFor();
    const saved = (await t.call('GET', `/v1/rules/${shadowRule}`)).json();
    expect(saved).toMatchObject({ expression: 'order.subtotal_minor >= 40000', mode: 'shadow', version: 2 });

    // Disabled and enabled again from the editor, and the list says so.
    await page.getByRole('button', { name: 'Disable' }).click();
    await row.getByText('disabled').waitFor();
    expect((await t.call('GET', `/v1/rules/${shadowRule}`)).json().enabled).toBe(false);
    await page.getByRole('button', { name: 'Enable' }).click();
    await row.getByText('shadow', { exact: true }).waitFor();
    expect((await t.call('GET', `/v1/rules/${shadowRule}`)).json().enabled).toBe(true);

    // Backtest the saved expression: fires on 45k (legitimate), 60k (unlabeled), 90k (abuse).
    await page.getByLabel('Period').selectOption('1');
    await page.getByRole('button', { name: 'Run backtest' }).click();
    const matrix = page.getByRole('table', { name: 'Confusion matrix' });
    await matrix.waitFor();
    expect(await page.getByTestId('backtest-summary').textContent()).toBe('6 attempts evaluated, 3 hits.');
    const cell = (name: string) => matrix.getByRole('button', { name });
    expect(await cell('Rule fires, labeled abuse: 1 decisions').textContent()).toBe('1');
    expect(await cell('Rule fires, labeled legitimate: 1 decisions').textContent()).toBe('1');
    expect(await cell('Rule silent, labeled legitimate: 1 decisions').textContent()).toBe('1');

    await cell('Rule silent, labeled abuse: 2 decisions').click();
    const missed = page.getByRole('table', { name: 'Decisions: Rule silent, labeled abuse' });
    await missed.waitFor();
    const missedIds = await missed.locator('tbody tr td:first-child button').allTextContents();
    expect(missedIds).toEqual([decisions[1], decisions[2]]);

    await cell('Rule fires, labeled abuse: 1 decisions').click();
    const caught = page.getByRole('table', { name: 'Decisions: Rule fires, labeled abuse' });
    await caught.getByRole('button', { name: decisions[5] as string }).click();
    const detail = caught.locator('.decision-detail');
    await detail.getByText('Huge carts — enforce review, fired').waitFor();
    expect(await detail.textContent()).toContain('label abuse');
    expect(await caught.getByRole('link', { name: 'JSON' }).getAttribute('href')).toBe(
      `/v1/decisions/${decisions[5]}`,
    );
    await noXss(page);
    await shot(page, 'rules-backtest');
    await context.close();
  });

  it('adds a list entry with an expiry, shows the API’s message for a bad range, and removes the entry', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'fraud');
    await page.getByRole('link', { name: 'Lists' }).click();
    await page.getByText('No active entries').waitFor();

    const form = page.getByRole('form', { name: 'Add an entry' });
    await form.getByLabel('List').selectOption('block');
    await form.getByLabel('Identifier type').selectOption('ip');
    await form.getByLabel('Value').fill('203.0.113.7/24');
    await form.getByLabel('Reason').fill(`ring ${XSS}`);
    await form.getByRole('button', { name: 'Add entry' }).click();
    // Host bits set: refused, with the API's message beside the value.
    await form.locator('.field-error').waitFor();
    expect(await form.locator('.field-error').textContent()).toMatch(/host bits/i);

    await form.getByLabel('Value').fill('203.0.113.0/24');
    await form.getByLabel('Expires (optional)').fill('2030-01-02T03:04');
    await form.getByRole('button', { name: 'Add entry' }).click();
    await page.getByText('Added 203.0.113.0/24 to the block list').waitFor();
    const entries = page.getByRole('table', { name: 'List entries' });
    const entryRow = entries.getByRole('row').filter({ hasText: '203.0.113.0/24' });
    await entryRow.waitFor();
    await entryRow.getByText(`ring ${XSS}`).waitFor();
    const stored = (await t.call('GET', '/v1/lists?type=ip')).json().data as {
      id: number;
      network: string | null;
      expires_at: string | null;
    }[];
    const entry = stored.find((e) => e.network === '203.0.113.0/24');
    expect(entry?.expires_at).not.toBeNull();
    const shownExpiry = await page.evaluate(
      (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }),
      entry?.expires_at as string,
    );
    expect(await entryRow.locator('td').nth(6).textContent()).toBe(shownExpiry);
    expect(
      await page.evaluate((iso) => {
        const d = new Date(iso);
        return [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()];
      }, entry?.expires_at as string),
    ).toEqual([2030, 0, 2, 3, 4]);
    await noXss(page);
    await shot(page, 'lists');

    await entryRow.getByRole('button', { name: `Remove entry ${entry?.id}` }).click();
    await entryRow.getByLabel('Reason for removal (optional)').fill('range reassigned');
    await entryRow.getByRole('button', { name: 'Confirm removal' }).click();
    await page.getByText(`Removed entry ${entry?.id} from the block list.`).waitFor();
    await page.getByText('No active entries').waitFor();
    const after = (await t.call('GET', '/v1/lists?type=ip')).json().data as { id: number }[];
    expect(after.map((e) => e.id)).not.toContain(entry?.id);
    await context.close();
  });

  it('keeps a marketer away from rules and lists, in the navigation and at the API', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'marketing');
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    expect(links).not.toContain('Rules');
    expect(links).not.toContain('Lists');
    for (const target of ['/console/rules', '/console/lists']) {
      await page.goto(target);
      await page.getByRole('heading', { name: 'Not for your role' }).waitFor();
      expect(await page.getByRole('table').count()).toBe(0);
    }
    const statuses = await page.evaluate(async () => [
      (await fetch('/v1/rules')).status,
      (await fetch('/v1/rules/stats')).status,
      (await fetch('/v1/lists')).status,
    ]);
    expect(statuses).toEqual([403, 403, 403]);
    await context.close();
  });
});
