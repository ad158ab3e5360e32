/**
 * The review queue's inbox and assignment through the real app (Fastify inject), on every store:
 * "next case" holds the oldest free case for one analyst until the lock runs out, analysts asking at
 * the same time get different cases, another analyst's verdict on a held case is a 409 problem, the
 * inbox filters and SLA age, one case with its rules, linked accounts and history, bulk verdicts on a
 * ring with each case audited, the fraud scope, the console session (audited as the person) and bad input.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRule, expectBlocked, expectRedeemed, fraudKey, redeem } from '../risk/helpers.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const LOCK_MINUTES = 15;
const SLA_MINUTES = 60;
const PASSWORD = 'correct horse battery staple';

interface ReviewJson {
  redemption: { id: string; customer_id: string; campaign_id: string; review_status: string };
  assignment: { assigned_to: string; locked_until: string; mine: boolean } | null;
  age_seconds: number;
  overdue: boolean;
  decision: { because: string[]; rules: { id: string; features: Record<string, number> }[] } | null;
  linked_accounts: { person_id: string | null; customers: string[] };
}

const idsOf = (res: LightMyRequestResponse) =>
  (res.json().data as ReviewJson[]).map((r) => r.redemption.id).sort();

describe.each(backends.map((b) => [b.name, b] as const))('the review queue on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date('2026-06-01T12:00:00Z'));
  let analystA = '';
  let analystB = '';
  let keyIdOf: Map<string, string>;

  beforeAll(async () => {
    t = await startTestApp(backend, {
      clock,
      env: {
        REVIEW_LOCK_MINUTES: String(LOCK_MINUTES),
        REVIEW_SLA_MINUTES: String(SLA_MINUTES),
        CONSOLE_PASSWORD_SCRYPT_LOG_N: '14',
      },
    });
    keyIdOf = new Map();
    for (const name of ['a', 'b']) {
      const created = await t.app.apiKeys.create(`analyst ${name}`, ['fraud'], 'test');
      keyIdOf.set(created.secret, created.key.id);
      if (name === 'a') analystA = created.secret;
      else analystB = created.secret;
    }
  }, 60_000);
  afterAll(async () => t?.close());

  // The queue is global: each test starts from an empty one (every case left over is approved once
  // every lock has run out).
  beforeEach(async () => {
    clock.advance((LOCK_MINUTES + 1) * 60_000);
    for (;;) {
      const left = await t.call('GET', '/v1/reviews?limit=100');
      const ids = idsOf(left);
      if (ids.length === 0) break;
      const done = await t.call('POST', '/v1/reviews/bulk', { body: { ids, verdict: 'approve' } });
      expect(done.statusCode, done.body).toBe(200);
    }
  });

  /** A campaign whose every redemption is held for review; returns its code, campaign and rule. */
  async function reviewedCampaign() {
    const { campaignId, code } = await campaignWithCode(t);
    const rule = await createRule(t, analystA, {
      expression: "request.operation == 'redemption'",
      action: 'review',
      reason: 'look at every order',
      campaign_id: campaignId,
    });
    return { campaignId, code, rule };
  }

  async function held(code: string, customer = unique('CUS_Q_'), context?: Record<string, unknown>) {
    const r = expectRedeemed(await redeem(t, code, customer, context ? { context } : {}), 'review');
    clock.advance(1_000);
    return r.id as string;
  }

  const next = (key: string) => t.call('POST', '/v1/reviews/next', { key });

  it('gives each analyst the oldest free case, holds it until the lock runs out, and refuses another analyst’s verdict with a 409 problem', async () => {
    const { code } = await reviewedCampaign();
    const first = await held(code);
    const second = await held(code);

    const a = await next(analystA);
    expect(a.statusCode, a.body).toBe(200);
    expect(a.json().review).toMatchObject({
      redemption: { id: first },
      assignment: { assigned_to: keyIdOf.get(analystA), mine: true },
    });
    const lockedUntil = a.json().review.assignment.locked_until as string;
    expect(Date.parse(lockedUntil) - clock.now().getTime()).toBe(LOCK_MINUTES * 60_000);
    // Asking again gives the case the analyst already holds, not a second one.
    expect((await next(analystA)).json().review.redemption.id).toBe(first);
    const b = await next(analystB);
    expect(b.json().review.redemption.id).toBe(second);
    // Every pending case is held: nothing for a third analyst.
    const third = await next(await fraudKey(t));
    expect(third.json()).toEqual({ review: null });

    // B cannot decide A's case; the problem says who holds it and until when.
    const refused = await t.call('POST', `/v1/reviews/${first}/reject`, { key: analystB, body: {} });
    expect(refused.statusCode).toBe(409);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({
      code: 'review_locked',
      assigned_to: keyIdOf.get(analystA),
      locked_until: expect.any(String),
    });
    expect((await t.call('POST', `/v1/reviews/${first}/take`, { key: analystB })).json().code).toBe(
      'review_locked',
    );
    expect((await t.call('POST', `/v1/reviews/${first}/release`, { key: analystB })).json().code).toBe(
      'review_locked',
    );
    // The case is still pending and A's.
    const view = await t.call('GET', `/v1/reviews/${first}`, { key: analystA });
    expect(view.json()).toMatchObject({
      redemption: { review_status: 'pending' },
      assignment: { mine: true },
    });
    const asB = await t.call('GET', `/v1/reviews/${first}`, { key: analystB });
    expect(asB.json().assignment.mine).toBe(false);

    const approved = await t.call('POST', `/v1/reviews/${first}/approve`, {
      key: analystA,
      body: { note: 'regular customer' },
    });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json().review_status).toBe('approved');

    // B releases its case; A takes it by name. Once A's lock runs out, B may decide it.
    const released = await t.call('POST', `/v1/reviews/${second}/release`, { key: analystB });
    expect(released.statusCode, released.body).toBe(200);
    expect(released.json().assignment).toBeNull();
    const taken = await t.call('POST', `/v1/reviews/${second}/take`, { key: analystA });
    expect(taken.json().assignment).toMatchObject({ mine: true });
    clock.advance(LOCK_MINUTES * 60_000 + 1);
    const late = await t.call('POST', `/v1/reviews/${second}/reject`, { key: analystB, body: {} });
    expect(late.statusCode, late.body).toBe(200);

    // Taking a decided case is a conflict; a redemption never held is not under review.
    expect((await t.call('POST', `/v1/reviews/${second}/take`, { key: analystA })).json().code).toBe(
      'review_closed',
    );

    // Audited as whoever acted, in order.
    const audit = await t.call('GET', `/v1/audit?resource=${first}`);
    const entries = (audit.json().data as { actor: string; action: string }[]).reverse();
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['review.assigned', keyIdOf.get(analystA)],
      ['review.approved', keyIdOf.get(analystA)],
    ]);
    const secondAudit = (await t.call('GET', `/v1/audit?resource=${second}`)).json().data as {
      actor: string;
      action: string;
    }[];
    expect(secondAudit.reverse().map((e) => [e.action, e.actor])).toEqual([
      ['review.assigned', keyIdOf.get(analystB)],
      ['review.released', keyIdOf.get(analystB)],
      ['review.assigned', keyIdOf.get(analystA)],
      ['review.rejected', keyIdOf.get(analystB)],
    ]);
  });

  it('gives N analysts asking at the same time N different cases', async () => {
    const { code } = await reviewedCampaign();
    const N = 8;
    const cases: string[] = [];
    for (let i = 0; i < N; i++) cases.push(await held(code));
    const keys = await Promise.all(Array.from({ length: N }, () => fraudKey(t)));
    const answers = await Promise.all(keys.map((key) => next(key)));
    const taken = answers.map((a) => {
      expect(a.statusCode, a.body).toBe(200);
      return a.json().review?.redemption.id as string;
    });
    expect(new Set(taken).size).toBe(N);
    expect([...taken].sort()).toEqual([...cases].sort());
    expect((await next(await fraudKey(t))).json().review).toBeNull();
  });

  it('filters the inbox by status, campaign, rule, customer, person, holder and age, and flags cases past the SLA', async () => {
    const one = await reviewedCampaign();
    const other = await reviewedCampaign();
    const email = `${unique('ring').toLowerCase()}@example.com`;
    const ringA = unique('CUS_RING_');
    const ringB = unique('CUS_RING_');
    const old = await held(one.code, ringA, { email });
    clock.advance(SLA_MINUTES * 60_000);
    const young = await held(one.code, ringB, { email });
    const elsewhere = await held(other.code);

    const all = await t.call('GET', '/v1/reviews', { key: analystA });
    expect(all.json()).toMatchObject({ pending: 3, sla_minutes: SLA_MINUTES });
    const byId = new Map((all.json().data as ReviewJson[]).map((r) => [r.redemption.id, r]));
    expect(byId.get(old)).toMatchObject({ overdue: true, assignment: null });
    expect(byId.get(old)?.age_seconds).toBeGreaterThan(SLA_MINUTES * 60);
    expect(byId.get(young)?.overdue).toBe(false);

    const list = (query: string, key = analystA) => t.call('GET', `/v1/reviews?${query}`, { key });
    expect(idsOf(await list(`campaign_id=${one.campaignId}`))).toEqual([old, young].sort());
    expect(idsOf(await list(`rule_id=${other.rule}`))).toEqual([elsewhere]);
    expect(idsOf(await list(`customer_id=${ringB}`))).toEqual([young]);
    const person = byId.get(old)?.linked_accounts.person_id as string;
    expect(person).toBeTruthy();
    expect(idsOf(await list(`person_id=${encodeURIComponent(person)}`))).toEqual([old, young].sort());
    expect(idsOf(await list(`min_age_minutes=${SLA_MINUTES}`))).toEqual([old]);

    await next(analystA); // takes `old`
    expect(idsOf(await list('assigned=me'))).toEqual([old]);
    expect(idsOf(await list('assigned=me', analystB))).toEqual([]);
    expect(idsOf(await list('assigned=unassigned'))).toEqual([young, elsewhere].sort());

    await t.call('POST', `/v1/reviews/${old}/reject`, { key: analystA, body: {} });
    await t.call('POST', `/v1/reviews/${young}/reject`, { key: analystA, body: {} });
    // Decided cases newest first, a page at a time.
    const rejected = await list(`status=rejected&campaign_id=${one.campaignId}&limit=1`);
    expect((rejected.json().data as ReviewJson[]).map((r) => r.redemption.id)).toEqual([young]);
    const rest = await list(
      `status=rejected&campaign_id=${one.campaignId}&limit=1&cursor=${rejected.json().next_cursor}`,
    );
    expect((rest.json().data as ReviewJson[]).map((r) => r.redemption.id)).toEqual([old]);
    expect(rest.json().next_cursor).toBeNull();
    expect(idsOf(await list(`status=approved&campaign_id=${one.campaignId}`))).toEqual([]);
    const page1 = await list(`campaign_id=${other.campaignId}&limit=1`);
    expect(page1.json().next_cursor).toBeNull();
  });

  it('shows one case with every rule that fired and its values, the linked accounts and the customer’s history', async () => {
    const { code, rule } = await reviewedCampaign();
    const email = `${unique('case').toLowerCase()}@example.com`;
    const customer = unique('CUS_CASE_');
    const partner = unique('CUS_CASE_');
    const earlier = await held(code, customer, { email });
    await held(code, partner, { email });
    // An attempt the rules stopped is part of the history too (a decision without a redemption).
    const fenced = await campaignWithCode(t);
    await createRule(t, analystA, {
      expression: "request.operation == 'redemption'",
      action: 'block',
      reason: 'closed to everyone',
      campaign_id: fenced.campaignId,
    });
    expectBlocked(await redeem(t, fenced.code, customer, { context: { email } }));
    clock.advance(1_000);
    const id = await held(code, customer, { email });

    const res = await t.call('GET', `/v1/reviews/${id}`, { key: analystA });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.decision.because).toEqual([rule]);
    const fired = (body.decision.rules as { id: string; features: Record<string, number> }[]).find(
      (r) => r.id === rule,
    );
    expect(fired).toBeDefined();
    expect(body.linked_accounts.customers.sort()).toEqual([customer, partner].sort());
    expect(body.linked_accounts.shared_identifiers).toEqual([
      expect.objectContaining({ type: 'email', customers: [customer, partner].sort() }),
    ]);
    expect((body.history.redemptions as { id: string }[]).map((r) => r.id)).toEqual([id, earlier]);
    expect(body.history.decisions).toHaveLength(3);
    expect(body.history.decisions[0]).toMatchObject({ redemption_id: id, action: 'review', because: [rule] });
    expect(body.history.decisions[1]).toMatchObject({ redemption_id: null, action: 'block' });
    expect(body.history.decisions[2]).toMatchObject({ action: 'review' });

    const plain = await campaignWithCode(t);
    const notHeld = expectRedeemed(await redeem(t, plain.code, unique('CUS_PLAIN_')));
    expect((await t.call('GET', `/v1/reviews/${notHeld.id}`, { key: analystA })).json().code).toBe(
      'not_under_review',
    );
    expect(
      (await t.call('GET', '/v1/reviews/red_00000000000000000000000000', { key: analystA })).json().code,
    ).toBe('redemption_not_found');
  });

  it('decides a ring of cases with one verdict, label and note, each audited; a held or contrary case is reported, not forced', async () => {
    const { code } = await reviewedCampaign();
    const email = `${unique('bulk').toLowerCase()}@example.com`;
    const ring = [
      await held(code, unique('CUS_B_'), { email }),
      await held(code, unique('CUS_B_'), { email }),
    ];
    const heldByB = await held(code, unique('CUS_B_'), { email });
    await t.call('POST', `/v1/reviews/${heldByB}/take`, { key: analystB });
    const approvedBefore = await held(code, unique('CUS_B_'), { email });
    await t.call('POST', `/v1/reviews/${approvedBefore}/approve`, { key: analystA, body: {} });
    const notHeld = expectRedeemed(await redeem(t, (await campaignWithCode(t)).code, unique('CUS_N_'))).id;

    const body = {
      ids: [...ring, heldByB, approvedBefore, notHeld, 'red_00000000000000000000000000'],
      verdict: 'reject',
      label: 'abuse',
      note: 'one ring: shared email',
    };
    const res = await t.call('POST', '/v1/reviews/bulk', { key: analystA, body });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().decided).toBe(2);
    expect((res.json().results as { id: string; outcome: string }[]).map((r) => [r.id, r.outcome])).toEqual([
      [ring[0], 'decided'],
      [ring[1], 'decided'],
      [heldByB, 'locked'],
      [approvedBefore, 'conflict'],
      [notHeld, 'not_under_review'],
      ['red_00000000000000000000000000', 'not_found'],
    ]);
    expect(res.json().results[0].redemption).toMatchObject({
      status: 'rolled_back',
      review_status: 'rejected',
    });

    // A repeat changes nothing more.
    const again = await t.call('POST', '/v1/reviews/bulk', { key: analystA, body: { ...body, ids: ring } });
    expect((again.json().results as { outcome: string }[]).map((r) => r.outcome)).toEqual([
      'unchanged',
      'unchanged',
    ]);
    for (const id of ring) {
      const entries = (await t.call('GET', `/v1/audit?resource=${id}&action=review.`)).json().data as {
        actor: string;
        action: string;
        reason: string | null;
        details: Record<string, unknown>;
      }[];
      expect(entries).toEqual([
        expect.objectContaining({
          actor: keyIdOf.get(analystA),
          action: 'review.rejected',
          reason: 'one ring: shared email',
          details: expect.objectContaining({ label: 'abuse' }),
        }),
      ]);
    }
  });

  it('needs the fraud scope, and refuses bad input with a 400 problem', async () => {
    const { code } = await reviewedCampaign();
    const id = await held(code);
    const routes: [InjectOptions['method'], string, unknown?][] = [
      ['GET', '/v1/reviews'],
      ['GET', `/v1/reviews/${id}`],
      ['POST', '/v1/reviews/next'],
      ['POST', `/v1/reviews/${id}/take`],
      ['POST', `/v1/reviews/${id}/release`],
      ['POST', '/v1/reviews/bulk', { ids: [id], verdict: 'approve' }],
    ];
    for (const [method, url, body] of routes) {
      const marketing = await t.call(method, url, { key: t.keys.marketing, body });
      expect(marketing.statusCode, `${method} ${url}`).toBe(403);
      expect(marketing.json().code).toBe('forbidden');
      expect((await t.call(method, url, { key: null, body })).statusCode).toBe(401);
    }
    const bad: [InjectOptions['method'], string, unknown?][] = [
      ['GET', '/v1/reviews?status=maybe'],
      ['GET', '/v1/reviews?min_age_minutes=-1'],
      ['GET', '/v1/reviews?rule_id=1%20OR%201=1'],
      ['GET', '/v1/reviews?assigned=everyone'],
      ['GET', '/v1/reviews?unknown=1'],
      ['GET', '/v1/reviews/not-an-id'],
      ['POST', '/v1/reviews/red_x/take'],
      ['POST', '/v1/reviews/bulk', { ids: [], verdict: 'approve' }],
      ['POST', '/v1/reviews/bulk', { ids: [id, id], verdict: 'approve' }],
      ['POST', '/v1/reviews/bulk', { ids: [id], verdict: 'maybe' }],
      ['POST', '/v1/reviews/bulk', { ids: [id], verdict: 'approve', extra: true }],
      ['POST', '/v1/reviews/bulk', { ids: [id], verdict: 'approve', note: '' }],
      [
        'POST',
        '/v1/reviews/bulk',
        {
          ids: Array.from({ length: 101 }, (_, i) => `red_${String(i).padStart(26, '0')}`),
          verdict: 'approve',
        },
      ],
    ];
    for (const [method, url, body] of bad) {
      const res = await t.call(method, url, { key: analystA, body });
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(body)}`).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    // Nothing of that decided the case.
    const view = await t.call('GET', `/v1/reviews/${id}`, { key: analystA });
    expect(view.json().redemption.review_status).toBe('pending');
  });

  it('takes and decides cases in a console session as the person, with the CSRF token', async () => {
    const { code } = await reviewedCampaign();
    const id = await held(code);
    const email = `fraud.${unique('u').toLowerCase()}@example.com`;
    const made = await t.call('POST', '/v1/console-users', {
      body: { email, role: 'fraud', password: PASSWORD },
    });
    expect(made.statusCode, made.body).toBe(201);
    const signIn = await t.server.inject({
      method: 'POST',
      url: '/v1/session',
      headers: { origin: 'http://localhost' },
      payload: { email, password: PASSWORD },
    });
    expect(signIn.statusCode, signIn.body).toBe(201);
    const cookie = /^(pg_session=[^;]*)/.exec(String(signIn.headers['set-cookie']))?.[1] as string;
    const csrf = signIn.json().csrf_token as string;
    const userId = signIn.json().user.id as string;
    const post = (url: string, withCsrf = true) =>
      t.server.inject({
        method: 'POST',
        url,
        headers: {
          cookie,
          origin: 'http://localhost',
          'sec-fetch-site': 'same-origin',
          ...(withCsrf ? { 'x-csrf-token': csrf } : {}),
        },
      });

    expect((await post('/v1/reviews/next', false)).json().code).toBe('csrf_failed');
    const taken = await post('/v1/reviews/next');
    expect(taken.statusCode, taken.body).toBe(200);
    expect(taken.json().review).toMatchObject({
      redemption: { id },
      assignment: { assigned_to: userId, mine: true },
    });
    const entries = (await t.call('GET', `/v1/audit?resource=${id}`)).json().data as { actor: string }[];
    expect(entries.map((e) => e.actor)).toEqual([userId]);
  });
});
