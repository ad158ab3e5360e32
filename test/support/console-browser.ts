/**
 * What every browser test of the console shares: Debian's Chromium through playwright-core (required
 * under CI=true, skipped with a warning elsewhere), the built console, the real app listening on a
 * port of the test's own, one console user per role, pages that play a person, and screenshots under
 * artifacts/screenshots/ (gitignored; CI keeps them), with one of where a failed test stopped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  chromium,
  type Page,
} from 'playwright-core';
import { expect } from 'vitest';
import { startTestApp, type TestApp, unique } from './app.js';
import { backends } from './backends.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = path.resolve(import.meta.dirname, '../..');
export const SHOTS = path.join(ROOT, 'artifacts', 'screenshots');
export const PASSWORD = 'correct horse battery staple';
/** Every payload sets window.__xss if a script of it runs (see noXss). */
export const XSS = `<img src=x onerror="window.__xss=1">"><script>window.__xss=2</script>`;
export const ROLES = ['admin', 'marketing', 'fraud', 'on_call', 'finance'] as const;

export const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) {
  if (process.env.CI === 'true')
    throw new Error(`CI=true needs Chromium at ${CHROMIUM} for the console tests`);
  console.warn(`skipping the console browser tests: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

export interface PageOptions extends BrowserContextOptions {
  /** Print the page's console errors to the test's output (default true). */
  logErrors?: boolean;
}

export class ConsoleBrowser {
  t!: TestApp;
  browser!: Browser;
  readonly base: string;
  /** Console users by name: their email and id. */
  readonly emails: Record<string, string> = {};
  readonly ids: Record<string, string> = {};
  /** The page a failed test leaves a picture of. */
  current: Page | null = null;

  constructor(readonly port: number) {
    this.base = `http://127.0.0.1:${port}`;
  }

  /**
   * Builds the console if its sources changed, starts the app on PGlite and makes the console users:
   * by default one per role, each named after its role.
   */
  async start(
    env: Record<string, string> = {},
    users: readonly { name: string; role: string }[] = ROLES.map((role) => ({ name: role, role })),
  ): Promise<TestApp> {
    execFileSync(process.execPath, ['scripts/build.mjs', '--console', '--if-stale'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    mkdirSync(SHOTS, { recursive: true });
    this.t = await startTestApp(backends[0] as (typeof backends)[number], {
      env: { CONSOLE_PASSWORD_SCRYPT_LOG_N: '14', ...env },
    });
    await this.t.server.listen({ port: this.port, host: '127.0.0.1' });
    for (const { name, role } of users) {
      this.emails[name] = `${name.replace(/[^a-z0-9]/gi, '')}.${unique('u').toLowerCase()}@example.com`;
      const res = await this.t.call('POST', '/v1/console-users', {
        body: { email: this.emails[name], role, password: PASSWORD },
      });
      expect(res.statusCode, res.body).toBe(201);
      this.ids[name] = res.json().id as string;
    }
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    return this.t;
  }

  async close(): Promise<void> {
    await this.browser?.close();
    await this.t?.close();
  }

  /**
   * A fresh browser profile. Headless Chromium says so in its user agent, and the default rules refuse
   * automation on the customer's own routes (wallet reads, conversions): these tests play a person.
   * A dialog fails the test (an XSS payload that ran would open one).
   */
  async newPage({
    logErrors = true,
    ...options
  }: PageOptions = {}): Promise<{ context: BrowserContext; page: Page }> {
    const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${this.browser.version()} Safari/537.36`;
    const context = await this.browser.newContext({
      viewport: { width: 1280, height: 800 },
      baseURL: this.base,
      userAgent,
      ...options,
    });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    this.current = page;
    if (logErrors) {
      page.on('console', (message) => {
        if (message.type() === 'error') console.error(`browser: ${message.text()}`);
      });
    }
    page.on('dialog', (dialog) => {
      throw new Error(`a dialog opened: ${dialog.message()}`);
    });
    return { context, page };
  }

  async signIn(page: Page, name: string): Promise<void> {
    await page.goto('/console/');
    await page.getByLabel('Email').fill(this.emails[name] as string);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  }

  shot(page: Page, name: string): Promise<Buffer> {
    return page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  }

  /** For afterEach: a failed test leaves a full-page picture of where it stopped. */
  async afterEach(task: { name: string; result?: { state?: string } }): Promise<void> {
    const page = this.current;
    this.current = null;
    if (task.result?.state === 'fail' && page && !page.isClosed()) {
      await page.screenshot({
        path: path.join(SHOTS, `failed-${task.name.slice(0, 40)}.png`),
        fullPage: true,
      });
    }
  }
}

export async function noXss(page: Page): Promise<void> {
  expect(await page.evaluate('window.__xss')).toBeUndefined();
}
