/**
 * The console's accessibility and browser-level security in a real browser (Debian's Chromium via
 * playwright-core) against the real app on PGlite: axe-core on every page each role can reach, and
 * the wallet page at phone size; keyboard-only sign-in, navigation and a kill switch; a page on
 * another origin cannot change anything with the victim's session; a planted session id is never
 * adopted; a signed-out session is dead on the server.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page, type Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PORT = 20614;
const EVIL_PORT = 20615;
const ROOT = path.resolve(import.meta.dirname, '../..');
const PASSWORD = 'correct horse battery staple';
const ROLES = ['admin', 'marketing', 'fraud', 'on_call', 'finance'] as const;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) {
  if (process.env.CI === 'true')
    throw new Error(`CI=true needs Chromium at ${CHROMIUM} for the console tests`);
  console.warn(`skipping the console accessibility tests: no Chromium at ${CHROMIUM}`);
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

describe.skipIf(!haveBrowser)('the console’s accessibility and browser security', () => {
  let t: TestApp;
  let browser: Browser;
  let evil: Server;
  let evilPage = '';
  const base = `http://127.0.0.1:${PORT}`;
  const emails: Record<string, string> = {};
  let campaignId = '';

  beforeAll(async () => {
    execFileSync(process.execPath, ['scripts/build.mjs', '--console', '--if-stale'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    t = await startTestApp(backends[0] as (typeof backends)[number], {
      env: { CONSOLE_PASSWORD_SCRYPT_LOG_N: '14' },
    });
    await t.server.listen({ port: PORT, host: '127.0.0.1' });
    for (const role of ROLES) {
      emails[role] = `${role}.${unique('u').toLowerCase()}@example.com`;
      const res = await t.call('POST', '/v1/console-users', {
        body: { email: emails[role], role, password: PASSWORD },
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    // Something on every page: a campaign with codes, a rule sending it to review and a case in
    // the queue, a list entry; so axe sees tables, forms and details, not only empty states.
    const made = await t.call('POST', '/v1/campaigns', {
      body: {
        name: 'Accessible autumn',
        currency: 'JPY',
        budget_minor: 100_000,
        discount: { type: 'fixed_amount', amount_minor: 300 },
        status: 'active',
        starts_at: '2020-01-01T00:00:00Z',
      },
    });
    expect(made.statusCode, made.body).toBe(201);
    campaignId = made.json().id as string;
    const rule = await t.call('POST', '/v1/rules', {
      body: {
        name: 'everything to review',
        expression: 'true',
        action: 'review',
        reason: 'manual check',
        mode: 'enforce',
        campaign_id: campaignId,
      },
    });
    expect(rule.statusCode, rule.body).toBe(201);
    // A case in the queue for each role that opens one (the next case is locked to whoever takes it).
    for (let n = 0; n < 3; n++) {
      const code = `A11Y${n}${unique('c')
        .replace(/[^A-Z0-9]/gi, '')
        .toUpperCase()}`;
      const added = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code } });
      expect(added.statusCode, added.body).toBe(201);
      const redeemed = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('idem') },
        body: checkoutBody(code, {
          customer: { id: `cus_a11y_${n}` },
          cart: { currency: 'JPY', subtotal_minor: 5000 },
        }),
      });
      expect(redeemed.statusCode, redeemed.body).toBe(201);
    }
    const listed = await t.call('POST', '/v1/lists', {
      body: { list: 'block', type: 'customer', value: 'cus_blocked', reason: 'ring', expires_at: null },
    });
    expect(listed.statusCode, listed.body).toBe(201);

    // Another origin's page (another port is another origin): a form that posts itself at load,
    // and a fetch with credentials, both at state-changing console routes.
    evilPage = `<!doctype html><html><body>
<form id="f" method="POST" action="${base}/v1/campaigns/${campaignId}/pause" enctype="text/plain">
<input name='{"reason":"csrf","x":"' value='"}'></form>
<script>
window.fetchStatus = fetch('${base}/v1/api-keys', {
  method: 'POST', credentials: 'include', mode: 'no-cors',
  headers: { 'content-type': 'text/plain' },
  body: JSON.stringify({ name: 'stolen', scopes: ['admin'] }),
}).then(r => r.type, e => 'error: ' + e)
  .finally(() => document.getElementById('f').submit());
</script></body></html>`;
    evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(evilPage);
    });
    await new Promise<void>((resolve) => evil.listen(EVIL_PORT, '127.0.0.1', resolve));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (evil ? evil.close(resolve) : resolve(undefined)));
    await t?.close();
  }, 60_000);

  /** `bypassCSP` only so that axe's source can be injected; the security tests keep the policy on. */
  async function newPage(
    viewport = { width: 1280, height: 800 },
    bypassCSP = false,
  ): Promise<{ context: BrowserContext; page: Page }> {
    // Headless Chromium says so in its user agent, and the default rules refuse automation on the
    // customer's own routes: these tests play a person in a browser.
    const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser.version()} Safari/537.36`;
    const context = await browser.newContext({ viewport, baseURL: base, userAgent, bypassCSP });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('dialog', (dialog) => {
      throw new Error(`a dialog opened: ${dialog.message()}`);
    });
    return { context, page };
  }

  async function signIn(page: Page, role: string) {
    await page.goto('/console/');
    await page.getByLabel('Email').fill(emails[role] as string);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  }

  /** Runs axe-core on what the page shows now: the serious and critical violations, one line each. */
  async function axe(page: Page, where: string): Promise<string[]> {
    if (!(await page.evaluate('typeof window.axe'))?.toString().includes('object'))
      await page.addScriptTag({ content: AXE });
    const { violations, passes } = (await page.evaluate(
      'window.axe.run(document, { resultTypes: ["violations"] }).then((r) => ({ violations: r.violations, passes: r.passes.length }))',
    )) as { violations: AxeViolation[]; passes: number };
    // An engine that checked nothing would pass every page.
    expect(passes, `axe checked nothing on ${where}`).toBeGreaterThan(10);
    return violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map(
        (v) =>
          `${where}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
      );
  }

  /** Waits until nothing is loading: no spinner and no request in flight. */
  async function settled(page: Page) {
    await page.waitForLoadState('networkidle', { timeout: 10_000 }).catch(() => {});
    await page
      .locator('[aria-busy="true"], .spinner')
      .first()
      .waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator('main h1').first().waitFor();
  }

  it.each(ROLES)(
    'has no serious or critical axe violation on any page %s can reach',
    async (role) => {
      const { context, page } = await newPage(undefined, true);
      const found: string[] = [];
      await page.goto('/console/');
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      found.push(...(await axe(page, 'sign-in')));
      await page.getByLabel('Email').fill(emails[role] as string);
      await page.getByLabel('Password').fill('not the password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      found.push(...(await axe(page, 'sign-in with an error')));
      await signIn(page, role);
      const nav = page.getByRole('navigation', { name: 'Main' });
      const links = await nav.getByRole('link').allTextContents();
      expect(links.length).toBeGreaterThan(0);
      for (const name of links) {
        await nav.getByRole('link', { name, exact: true }).click();
        await settled(page);
        found.push(...(await axe(page, `${role} ${name}`)));
        if (name === 'Campaigns') {
          await page.getByRole('link', { name: 'New campaign' }).click();
          await settled(page);
          found.push(...(await axe(page, `${role} new campaign`)));
          await page.getByRole('button', { name: 'Create campaign' }).click();
          await page.locator('.field-error').first().waitFor();
          found.push(...(await axe(page, `${role} new campaign with errors`)));
          await page.goto(`/console/campaigns/${campaignId}`);
          await settled(page);
          found.push(...(await axe(page, `${role} campaign detail`)));
          await page.goto(`/console/campaigns/${campaignId}/edit`);
          await settled(page);
          found.push(...(await axe(page, `${role} campaign edit`)));
        }
        if (name === 'Users') {
          await page.getByRole('button', { name: 'Create user' }).click();
          await page.locator('.field-error').first().waitFor();
          found.push(...(await axe(page, `${role} new user with errors`)));
        }
        if (name === 'API keys') {
          await page.getByLabel('Key name').fill('axe checked');
          await page.getByRole('checkbox', { name: 'checkout' }).check();
          await page.getByRole('button', { name: 'Create key' }).click();
          await page.getByTestId('new-secret').waitFor();
          found.push(...(await axe(page, `${role} new API key`)));
        }
        if (name === 'Rules') {
          await page.getByLabel('Expression (CEL)').fill('features.no_such_feature > 1');
          await page.locator('#cel-check.check-bad').waitFor();
          found.push(...(await axe(page, `${role} rule with a type error`)));
          await page.getByRole('button', { name: 'everything to review' }).click();
          await page.getByRole('button', { name: 'Run backtest' }).click();
          await page.getByRole('table', { name: 'Confusion matrix' }).waitFor();
          found.push(...(await axe(page, `${role} backtest`)));
        }
        if (name === 'Review queue') {
          await page.getByRole('button', { name: 'Next case' }).click();
          await page.getByRole('article').first().waitFor();
          await settled(page);
          found.push(...(await axe(page, `${role} review case`)));
        }
      }
      expect(found, found.join('\n')).toEqual([]);
      await context.close();
    },
    120_000,
  );

  it('has no serious or critical axe violation on the customer wallet at 390×844', async () => {
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
    const token = (
      await t.call('POST', '/v1/customer-tokens', { key: t.keys.checkout, body: { customer_id: customer } })
    ).json().token as string;
    const { context, page } = await newPage({ width: 390, height: 844 }, true);
    const found: string[] = [];
    for (const locale of ['en-US', 'ja-JP']) {
      await page.goto('about:blank');
      await page.goto(`/console/wallet.html#token=${token}&program=${program.json().id}&locale=${locale}`);
      await expect.poll(() => page.getByTestId('balance').textContent()).toMatch(/\d/);
      await page.waitForLoadState('networkidle');
      found.push(...(await axe(page, `wallet ${locale}`)));
    }
    // A coupon in the list, with its Copy button, and the convert form's error.
    await page.getByRole('spinbutton').first().fill('150');
    await page.getByRole('button', { name: '交換する' }).click();
    await page.locator('#convert-message.bad').waitFor();
    await page.getByRole('spinbutton').first().fill('500');
    await page.getByRole('button', { name: '交換する' }).click();
    await page.locator('li.coupon').first().waitFor();
    found.push(...(await axe(page, 'wallet with a coupon')));
    expect(found, found.join('\n')).toEqual([]);
    await context.close();
  });

  it('signs in, moves through the navigation and pauses a campaign with the keyboard alone', async () => {
    const { context, page } = await newPage(undefined, true);
    await page.goto('/console/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // What has the focus: tag, type and its label (or text).
    const focused = () =>
      page.evaluate(`(() => {
        const el = document.activeElement;
        if (!el) return '';
        const label = el.closest('label')?.textContent?.trim() ?? el.getAttribute('aria-label') ?? '';
        return el.tagName.toLowerCase() + '|' + (el.getAttribute('type') ?? '') + '|' + (label || el.textContent.trim());
      })()`) as Promise<string>;
    // The outline must stand out from what is behind it: 3:1 at least (WCAG 1.4.11).
    const ring = async () =>
      (await page.evaluate(`(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      const rgb = (c) => [...c.match(/[\\d.]+/g).map(Number), 1].slice(0, 4);
      const lum = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      let behind = el.parentElement;
      while (behind && rgb(getComputedStyle(behind).backgroundColor)[3] === 0) behind = behind.parentElement;
      const bg = behind ? rgb(getComputedStyle(behind).backgroundColor) : [255, 255, 255];
      const [a, b] = [lum(rgb(style.outlineColor)), lum(bg)].sort((x, y) => y - x);
      return {
        inNav: el.closest('nav[aria-label="Main"]') !== null && el.tagName === 'A',
        text: el.textContent.trim(),
        visible: el.matches(':focus-visible'),
        outline: style.outlineStyle !== 'none' && Number.parseFloat(style.outlineWidth) >= 2,
        contrast: (a + 0.05) / (b + 0.05),
      };
    })()`)) as { inNav: boolean; text: string; visible: boolean; outline: boolean; contrast: number };
    const expectRing = async () => {
      const state = await ring();
      expect(state.visible && state.outline, `focus outline on ${state.text}`).toBe(true);
      expect(state.contrast, `focus outline contrast on ${state.text}`).toBeGreaterThanOrEqual(3);
    };
    await page.keyboard.press('Tab');
    expect(await focused()).toMatch(/^input\|email\|/);
    await expectRing();
    await page.keyboard.type(emails['on_call'] as string);
    await page.keyboard.press('Tab');
    expect(await focused()).toMatch(/^input\|password\|/);
    await expectRing();
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('button|submit|Sign in');
    await expectRing();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    // Every navigation link is reached by Tab, in order, and shows a focus outline.
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    expect(links.length).toBeGreaterThan(1);
    await page.evaluate('document.activeElement?.blur()');
    const reached: string[] = [];
    for (let i = 0; i < 30 && reached.length < links.length; i++) {
      await page.keyboard.press('Tab');
      const state = await ring();
      if (!state.inNav) continue;
      expect(state.visible && state.outline, `focus outline on ${state.text}`).toBe(true);
      expect(state.contrast, `focus outline contrast on ${state.text}`).toBeGreaterThanOrEqual(3);
      reached.push(state.text);
    }
    expect(reached).toEqual(links);

    // To the on-call page and its kill switch: choose, write the reason, submit; no mouse.
    const onCall = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'On-call' });
    await onCall.focus();
    await page.keyboard.press('Enter');
    const killSwitch = page.getByRole('form', { name: 'Kill switch' });
    const campaign = killSwitch.getByRole('combobox').first();
    await campaign.waitFor();
    await campaign.focus();
    // A closed select picks the option whose name starts with what is typed.
    await page.keyboard.type('Accessible');
    expect(await campaign.inputValue()).toBe(campaignId);
    await page.keyboard.press('Tab'); // Scope: the whole campaign
    await page.keyboard.press('Tab'); // Reason
    expect(await focused()).toMatch(/^textarea\|\|Reason/);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter'); // without a reason: refused, and says why
    await page.getByText('A kill switch needs a reason').waitFor();
    await killSwitch.getByLabel(/^Reason/).focus();
    await page.keyboard.type('keyboard only pause');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('button|submit|Pause campaign');
    await page.keyboard.press('Enter');
    await page.getByText('Campaign paused').waitFor();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    const paused = await axe(page, 'on-call with a paused campaign');
    expect(paused, paused.join('\n')).toEqual([]);
    const after = await t.call('GET', `/v1/campaigns/${campaignId}`);
    expect(after.json().status).toBe('paused');

    // The undo, also by keyboard: Tab on to its reason, write it, Tab to Resume, Enter.
    const tabTo = async (want: RegExp) => {
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('Tab');
        if (want.test(await focused())) return;
      }
      throw new Error(`Tab never reached ${want}`);
    };
    await tabTo(/^input\|\|Reason for an undo/);
    await page.keyboard.type('false alarm');
    await tabTo(/^button\|button\|Resume/);
    await page.keyboard.press('Enter');
    await page.getByText('No campaign is paused or throttled.').waitFor();
    expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json().status).toBe('active');
    await context.close();
  });

  it('refuses a change that a page on another origin starts with the victim’s session', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'admin');
    const keysBefore = (await t.call('GET', '/v1/api-keys')).json().data.length as number;
    // 127.0.0.1 on another port is another origin of the same site: the Strict cookie rides along
    // and the server's own check (Origin, Sec-Fetch-Site, the CSRF token) must refuse. localhost is
    // another site: the browser keeps the cookie back.
    for (const [origin, cookieSent] of [
      [`http://127.0.0.1:${EVIL_PORT}`, true],
      [`http://localhost:${EVIL_PORT}`, false],
    ] as const) {
      const attempts: { url: string; status: number; cookie: boolean; body: string }[] = [];
      const record = async (response: Response) => {
        const request = response.request();
        if (request.method() !== 'POST' || !response.url().startsWith(base)) return;
        const headers = await request.allHeaders();
        attempts.push({
          url: response.url(),
          status: response.status(),
          cookie: (headers['cookie'] ?? '').includes('pg_session='),
          body: await response.text().catch(() => ''),
        });
      };
      page.on('response', record);
      await page.goto(`${origin}/`);
      await page.waitForURL(`${base}/v1/campaigns/${campaignId}/pause`);
      await expect.poll(() => attempts.length).toBe(2);
      page.off('response', record);
      expect(attempts.map((a) => a.url).sort()).toEqual(
        [`${base}/v1/api-keys`, `${base}/v1/campaigns/${campaignId}/pause`].sort(),
      );
      // Without the cookie the answer is 401 (no session); 403 csrf_failed means the cookie came
      // along and the server refused. (An opaque no-cors answer has no body to read.)
      for (const attempt of attempts) {
        expect(attempt.status, `${origin} → ${attempt.url}`).toBe(cookieSent ? 403 : 401);
        if (attempt.body !== '') expect(attempt.body).toContain(cookieSent ? 'csrf_failed' : 'unauthorized');
      }
      const form = attempts.find((a) => a.url.endsWith('/pause'));
      expect(form?.cookie).toBe(cookieSent);
      // Nothing changed: the campaign is still active and no key was made.
      expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json().status).toBe('active');
      expect((await t.call('GET', '/v1/api-keys')).json().data.length).toBe(keysBefore);
    }

    // The same request from our own origin, with the session's CSRF token, does work.
    await page.goto('/console/');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const own = await page.evaluate(async () => {
      const session = (await (await fetch('/v1/session')).json()) as { csrf_token: string };
      const res = await fetch('/v1/api-keys', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
        body: JSON.stringify({ name: 'own origin', scopes: ['checkout'] }),
      });
      return res.status;
    });
    expect(own).toBe(201);
    // And without the token, from our own origin: refused too.
    const noToken = await page.evaluate(
      async (id) =>
        (
          await fetch(`/v1/campaigns/${id}/pause`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ reason: 'no token' }),
          })
        ).status,
      campaignId,
    );
    expect(noToken).toBe(403);
    expect((await t.call('GET', `/v1/campaigns/${campaignId}`)).json().status).toBe('active');
    await context.close();
  });

  it('never adopts a session id planted before sign-in, and sign-out ends the session on the server', async () => {
    const { context, page } = await newPage();
    const planted = 'planted-by-an-attacker-0123456789abcdef';
    await context.addCookies([{ name: 'pg_session', value: planted, url: base }]);
    await signIn(page, 'marketing');
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'pg_session');
    expect(session?.value).toBeTruthy();
    expect(session?.value).not.toBe(planted);
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    const asCookie = (value: string) =>
      t.server.inject({ method: 'GET', url: '/v1/session', headers: { cookie: `pg_session=${value}` } });
    expect((await asCookie(planted)).statusCode).toBe(401);
    const live = session?.value as string;
    expect((await asCookie(live)).statusCode).toBe(200);

    // A session id of the right shape that the attacker got by signing in himself is not adopted
    // either: the victim's sign-in revokes it and makes a new one.
    const attacker = await t.server.inject({
      method: 'POST',
      url: '/v1/session',
      payload: { email: emails['fraud'], password: PASSWORD },
    });
    expect(attacker.statusCode, attacker.body).toBe(201);
    const attackerId = /pg_session=([^;]+)/.exec(String(attacker.headers['set-cookie']))?.[1] as string;
    await context.clearCookies();
    await context.addCookies([{ name: 'pg_session', value: attackerId, url: base }]);
    const signedIn = await page.evaluate(
      async ([email, password]) =>
        (
          await fetch('/v1/session', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email, password }),
          })
        ).status,
      [emails['marketing'] as string, PASSWORD],
    );
    expect(signedIn).toBe(201);
    await page.reload();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const second = (await context.cookies(base)).find((c) => c.name === 'pg_session')?.value as string;
    expect(second).not.toBe(attackerId);
    expect((await asCookie(attackerId)).statusCode).toBe(401);
    const who = await page.evaluate(
      async () => ((await (await fetch('/v1/session')).json()) as { user: { email: string } }).user.email,
    );
    expect(who).toBe(emails['marketing']);

    // Sign-out revokes it on the server: the old value is refused, also when replayed by hand.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect((await asCookie(second)).statusCode).toBe(401);
    await context.addCookies([{ name: 'pg_session', value: second, url: base }]);
    expect(await page.evaluate(async () => (await fetch('/v1/session')).status)).toBe(401);
    expect(await page.evaluate(async () => (await fetch('/v1/campaigns')).status)).toBe(401);

    // Planted with a narrower Path, the attacker's cookie outlives the sign-in beside the new one and
    // is sent first: the server reads the last (its own), and revoked the planted one at sign-in.
    const again = await t.server.inject({
      method: 'POST',
      url: '/v1/session',
      payload: { email: emails['fraud'], password: PASSWORD },
    });
    const narrow = /pg_session=([^;]+)/.exec(String(again.headers['set-cookie']))?.[1] as string;
    await context.clearCookies();
    await context.addCookies([{ name: 'pg_session', value: narrow, domain: '127.0.0.1', path: '/v1' }]);
    const victim = await page.evaluate(
      async ([email, password]) =>
        (
          await fetch('/v1/session', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email, password }),
          })
        ).status,
      [emails['marketing'] as string, PASSWORD],
    );
    expect(victim).toBe(201);
    expect((await context.cookies()).filter((c) => c.name === 'pg_session')).toHaveLength(2);
    expect((await asCookie(narrow)).statusCode).toBe(401);
    const whoNow = await page.evaluate(
      async () => ((await (await fetch('/v1/session')).json()) as { user: { email: string } }).user.email,
    );
    expect(whoNow).toBe(emails['marketing']);
    await context.close();
  });
});
