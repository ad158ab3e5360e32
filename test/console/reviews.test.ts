/**
 * The review queue in a real browser (Debian's Chromium driven by playwright-core) against the real
 * app on PGlite: a fraud analyst takes the next case, sees every rule that fired and the linked
 * accounts' graph, and resolves it with a label; a ring is resolved in one go, each case audited;
 * a second analyst cannot resolve a case the first one holds; XSS payloads in customer ids and notes
 * render as text. A screenshot of the page at 1280x800 goes to artifacts/screenshots/ (gitignored).
 */
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRule, expectRedeemed, redeem } from '../risk/helpers.js';
import { campaignWithCode, type TestApp, unique } from '../support/app.js';
import { ConsoleBrowser, haveBrowser, noXss, XSS } from '../support/console-browser.js';

const PORT = 20611;

describe.skipIf(!haveBrowser)('the review queue in a browser', () => {
  const cb = new ConsoleBrowser(PORT);
  /** Two fraud analysts. */
  const users = cb.ids;
  let t: TestApp;
  let ruleName = '';
  const xssCustomer = `cus_${XSS}`;
  let xssCase = '';
  let linkedCase = '';
  let linkedCustomer = '';
  const ring: { customer: string; id: string }[] = [];

  beforeAll(async () => {
    t = await cb.start({ REVIEW_SLA_MINUTES: '240' }, [
      { name: 'first', role: 'fraud' },
      { name: 'second', role: 'fraud' },
    ]);

    // A campaign whose every redemption goes to review, and the cases in the order they were held:
    // the XSS customer and an account linked to it by an email, then a ring of three sharing another.
    const { campaignId, code } = await campaignWithCode(t);
    ruleName = `hold for a person ${unique('r')}`;
    await createRule(t, t.keys.admin, {
      name: ruleName,
      expression: "request.operation == 'redemption' && features.linked_accounts >= 1",
      action: 'review',
      reason: 'new campaign: look at every order',
      campaign_id: campaignId,
    });
    const held = async (customer: string, email: string) =>
      expectRedeemed(await redeem(t, code, customer, { context: { email } }), 'review').id as string;
    const pair = `${unique('pair').toLowerCase()}@example.com`;
    xssCase = await held(xssCustomer, pair);
    linkedCustomer = unique('cus_link_');
    linkedCase = await held(linkedCustomer, pair);
    const ringEmail = `${unique('ring').toLowerCase()}@example.com`;
    for (let i = 0; i < 3; i++) {
      const customer = unique('cus_ring_');
      ring.push({ customer, id: await held(customer, ringEmail) });
    }
  }, 240_000);

  afterAll(() => cb.close(), 60_000);
  afterEach((context) => cb.afterEach(context.task));

  const newPage = () => cb.newPage();

  async function signIn(page: Page, who: string) {
    await cb.signIn(page, who);
    await page.getByRole('link', { name: 'Review queue' }).click();
    await page.getByRole('table', { name: 'Inbox' }).waitFor();
  }

  const shot = (page: Page, name: string) => cb.shot(page, name);
  const reviewOf = async (id: string) => (await t.call('GET', `/v1/reviews/${id}`)).json();

  it('takes the next case, shows every rule that fired and the linked accounts, and resolves it with a label and a note', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'first');
    await page.getByRole('button', { name: 'Next case' }).click();
    const article = page.getByRole('article');
    await article.getByText(xssCustomer, { exact: true }).first().waitFor();
    await article.getByText(/^Held by you until/).waitFor();
    const rules = article.getByRole('table', { name: 'Rules that fired' });
    await rules.getByText(ruleName).waitFor();
    await rules.getByText('set the action').waitFor();
    await rules.getByText(/linked_accounts=\d/).waitFor();
    await article.getByRole('img', { name: 'Linked accounts: 2 accounts sharing 1 identifiers' }).waitFor();
    await article.getByText(linkedCustomer).first().waitFor();
    await article.getByRole('table', { name: 'Recent redemptions' }).waitFor();
    // Held by the analyst, as the API says too.
    expect((await reviewOf(xssCase)).assignment).toMatchObject({ assigned_to: users['first'] });

    await article.getByLabel('Legitimate').check();
    await article.getByLabel('Note', { exact: true }).fill(`known customer ${XSS}`);
    await noXss(page);
    await page.evaluate('window.scrollTo(0, 0)');
    await shot(page, 'review-case');
    await article.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Choose a case, or take the oldest').waitFor();
    await noXss(page);

    const decided = await reviewOf(xssCase);
    expect(decided.redemption.review_status).toBe('approved');
    const decision = await t.call('GET', `/v1/decisions/${decided.decision.id}`);
    expect(decision.json().label).toBe('legitimate');
    const audit = (await t.call('GET', `/v1/audit?resource=${xssCase}`)).json().data as {
      actor: string;
      action: string;
      reason: string | null;
    }[];
    expect(audit.map((e) => [e.action, e.actor])).toEqual([
      ['review.approved', users['first']],
      ['review.assigned', users['first']],
    ]);
    expect(audit[0]?.reason).toBe(`known customer ${XSS}`);
    await context.close();
  });

  it('refuses a second analyst’s verdict on a case the first one holds, and says so', async () => {
    const first = await newPage();
    await signIn(first.page, 'first');
    await first.page.getByRole('button', { name: 'Next case' }).click();
    await first.page.getByRole('article').getByText(linkedCustomer, { exact: true }).first().waitFor();

    const second = await newPage();
    await signIn(second.page, 'second');
    const row = second.page.locator(`tr[data-case="${linkedCase}"]`);
    await row.getByText('another analyst').waitFor();
    await row.getByRole('button', { name: linkedCustomer }).click();
    const article = second.page.getByRole('article');
    await article.getByText(/^Held by another analyst until/).waitFor();
    await article.getByRole('button', { name: 'Reject (rolls it back)' }).click();
    await article
      .getByRole('alert')
      .getByText(/another analyst holds this case until/)
      .waitFor();
    expect((await reviewOf(linkedCase)).redemption.review_status).toBe('pending');
    await first.context.close();
    await second.context.close();
  });

  it('resolves a ring of cases of one person together with one label and note, each audited', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'second');
    await page.getByRole('button', { name: ring[0]?.customer as string }).click();
    const article = page.getByRole('article');
    await article.getByRole('img', { name: 'Linked accounts: 3 accounts sharing 1 identifiers' }).waitFor();
    await article.getByRole('button', { name: 'Select this person’s cases' }).click();
    const bulk = page.getByRole('form', { name: 'Bulk verdict' });
    await bulk.getByText('3 selected').waitFor();
    const inbox = page.getByRole('table', { name: 'Inbox' });
    await expect.poll(() => inbox.locator('tbody tr').count()).toBe(3);
    await bulk.getByLabel('Note for all selected').fill(`ring on one email ${XSS}`);
    await page.evaluate('window.scrollTo(0, 0)');
    await shot(page, 'review-bulk');
    await bulk.getByRole('button', { name: 'Reject selected' }).click();
    await page.getByRole('status').getByText('Rejected: 3 decided').waitFor();
    await noXss(page);

    for (const { id } of ring) {
      const review = await reviewOf(id);
      expect(review.redemption).toMatchObject({ review_status: 'rejected', status: 'rolled_back' });
      const audit = (await t.call('GET', `/v1/audit?resource=${id}&action=review.rejected`)).json().data;
      expect(audit).toEqual([
        expect.objectContaining({ actor: users['second'], reason: `ring on one email ${XSS}` }),
      ]);
    }
    await context.close();
  });
});
