/**
 * Two-person approval through the HTTP API, with the policy on: each rule of the policy holds a change
 * as a pending approval and changes nothing; a second key applies it exactly once (also when two
 * approve at the same moment); the requester cannot approve their own change; a rejected, stale or
 * expired approval applies nothing; every step is audited and evented.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CampaignCreateBody,
  campaignBody,
  startTestApp,
  type TestApp,
  TestClock,
} from '../support/app.js';
import { backends } from '../support/backends.js';

const START = '2026-06-01T12:00:00Z';
const HOUR = 3_600_000;

/** A campaign that trips no rule: the README tour's, which its single admin key makes live alone. */
const SAFE: Partial<CampaignCreateBody> = {
  name: 'Summer 25',
  discount: { type: 'percentage', basis_points: 1500, max_discount_minor: 2000 },
  redemption_cap: 50,
  budget_minor: 50_000,
  per_customer_cap: 2,
  min_order_minor: 3000,
};

describe.each(backends.map((b) => [b.name, b] as const))('two-person approval on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date(START));
  /** Key ids, as the audit trail and approvals name them. */
  const ids = { admin: '', marketing: '', second: '' };
  let second = '';

  beforeAll(async () => {
    t = await startTestApp(backend, {
      clock,
      env: { APPROVALS: 'on', APPROVAL_FIXED_AMOUNT_AT_LEAST_MINOR: '10000' },
    });
    second = (await t.app.apiKeys.create('second marketer', ['marketing'], 'test')).secret;
    ids.admin = (await t.app.apiKeys.verify(t.keys.admin))?.id ?? '';
    ids.marketing = (await t.app.apiKeys.verify(t.keys.marketing))?.id ?? '';
    ids.second = (await t.app.apiKeys.verify(second))?.id ?? '';
  });
  afterAll(async () => t?.close());
  beforeEach(() => clock.set(START));

  /** POST /v1/campaigns as marketing; returns the response. */
  const create = (overrides: Partial<CampaignCreateBody>) =>
    t.call('POST', '/v1/campaigns', { key: t.keys.marketing, body: campaignBody(overrides) });

  /** A live campaign that tripped nothing. */
  async function safeCampaign(overrides: Partial<CampaignCreateBody> = {}) {
    const res = await create({ ...SAFE, ...overrides });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

  const campaign = async (id: string) => (await t.call('GET', `/v1/campaigns/${id}`)).json();
  const approve = (id: string, key: string, note?: string) =>
    t.call('POST', `/v1/approvals/${id}/approve`, { key, body: note ? { note } : {} });
  const reject = (id: string, key: string, note?: string) =>
    t.call('POST', `/v1/approvals/${id}/reject`, { key, body: note ? { note } : {} });

  async function auditOf(resource: string) {
    const res = await t.call('GET', `/v1/audit?resource=${resource}&limit=200`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as {
      actor: string;
      action: string;
      reason: string | null;
      details: Record<string, unknown>;
    }[];
  }

  async function eventsOf(aggregateId: string) {
    const rows = await t.app.db
      .selectFrom('outbox')
      .select('type')
      .where('aggregate_id', '=', aggregateId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => r.type);
  }

  /** Expect a 202 answer holding a pending approval for `rules`; returns the approval. */
  function pending(res: Awaited<ReturnType<typeof create>>, rules: string[]) {
    expect(res.statusCode, res.body).toBe(202);
    const approval = res.json();
    expect(approval).toMatchObject({ status: 'pending', rules, requested_by: ids.marketing });
    expect(res.headers.location).toBe(`/v1/approvals/${approval.id}`);
    return approval;
  }

  describe('each rule of the policy holds the change and changes nothing', () => {
    it('a new campaign at or above the percentage threshold is created as a draft, its activation pending', async () => {
      const res = await create({
        ...SAFE,
        discount: { type: 'percentage', basis_points: 5000, max_discount_minor: null },
      });
      const approval = pending(res, ['percentage_at_least']);
      expect(approval).toMatchObject({ kind: 'campaign.create', change: { status: 'active' } });
      expect(await campaign(approval.target_id)).toMatchObject({ status: 'draft', version: 1 });
    });

    it('a fixed amount at or above its configured threshold', async () => {
      const res = await create({ ...SAFE, discount: { type: 'fixed_amount', amount_minor: 10_000 } });
      const approval = pending(res, ['fixed_amount_at_least']);
      expect((await campaign(approval.target_id)).status).toBe('draft');
    });

    it('neither a redemption cap nor a budget', async () => {
      const approval = pending(await create({}), ['uncapped']);
      expect((await campaign(approval.target_id)).status).toBe('draft');
    });

    it('a budget above the threshold', async () => {
      const approval = pending(await create({ ...SAFE, budget_minor: 10_000_001 }), ['budget_above']);
      expect((await campaign(approval.target_id)).status).toBe('draft');
    });

    it('raising a live campaign’s cap or budget past the factor waits; the campaign keeps its terms', async () => {
      const c = await safeCampaign();
      const res = await t.call('PATCH', `/v1/campaigns/${c.id}`, {
        key: t.keys.marketing,
        body: { redemption_cap: 501, name: 'Summer, bigger' },
      });
      const approval = pending(res, ['cap_raised']);
      expect(approval).toMatchObject({
        kind: 'campaign.update',
        target_id: c.id,
        target_version: c.version,
        target_status: 'active',
        change: { redemption_cap: 501, name: 'Summer, bigger' },
      });
      const after = await campaign(c.id);
      expect(after).toMatchObject({ redemption_cap: 50, name: c.name, version: c.version, status: 'active' });
      expect(await eventsOf(c.id)).toEqual(['campaign.created']);

      const budget = await t.call('PATCH', `/v1/campaigns/${c.id}`, {
        key: t.keys.marketing,
        body: { budget_minor: null },
      });
      pending(budget, ['budget_raised']);
      expect((await campaign(c.id)).budget_minor).toBe(50_000);
    });

    it('activating a risky draft waits too', async () => {
      const draft = await create({ status: 'draft' });
      expect(draft.statusCode, draft.body).toBe(201);
      const res = await t.call('PATCH', `/v1/campaigns/${draft.json().id}`, {
        key: t.keys.marketing,
        body: { status: 'active' },
      });
      pending(res, ['uncapped']);
      expect((await campaign(draft.json().id)).status).toBe('draft');
    });

    it('a change that trips nothing applies at once: the README tour, a throttle, pause and resume', async () => {
      const tour = await t.call('POST', '/v1/campaigns', {
        key: t.keys.admin,
        body: { ...SAFE, currency: 'USD', status: 'active' },
      });
      expect(tour.statusCode, tour.body).toBe(201);
      expect(tour.json().status).toBe('active');
      const c = await safeCampaign();
      expect(c.status).toBe('active');
      const throttled = await t.call('POST', `/v1/campaigns/${c.id}/throttle`, {
        key: t.keys.marketing,
        body: { per_minute: 5, reason: 'spike' },
      });
      expect(throttled.statusCode, throttled.body).toBe(200);
      for (const action of ['pause', 'resume']) {
        const res = await t.call('POST', `/v1/campaigns/${c.id}/${action}`, { key: t.keys.marketing });
        expect(res.statusCode, res.body).toBe(200);
      }
      expect(await campaign(c.id)).toMatchObject({ status: 'active', throttle_per_minute: 5 });
    });
  });

  it('another key approves: the change applies once, audited as the approver with the requester, and evented', async () => {
    const requested = pending(await create({}), ['uncapped']);
    const res = await approve(requested.id, t.keys.admin, 'checked with finance');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      status: 'approved',
      decided_by: ids.admin,
      note: 'checked with finance',
    });
    expect((await campaign(requested.target_id)).status).toBe('active');

    const trail = await auditOf(requested.target_id);
    const activated = trail.filter((e) => e.action === 'campaign.active');
    expect(activated).toEqual([
      expect.objectContaining({
        actor: ids.admin,
        details: expect.objectContaining({ requested_by: ids.marketing, approval_id: requested.id }),
      }),
    ]);
    expect((await auditOf(requested.id)).map((e) => [e.action, e.actor])).toEqual([
      ['approval.approved', ids.admin],
      ['approval.requested', ids.marketing],
    ]);
    expect(await eventsOf(requested.id)).toEqual(['approval.requested', 'approval.approved']);

    // Deciding again is refused, whichever the verdict.
    const again = await approve(requested.id, second);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('approval_already_decided');
    expect((await reject(requested.id, second)).json().code).toBe('approval_already_decided');
  });

  it('two keys approving at the same moment apply the change exactly once', async () => {
    const c = await safeCampaign();
    const res = await t.call('PATCH', `/v1/campaigns/${c.id}`, {
      key: t.keys.marketing,
      body: { budget_minor: 5_000_000 },
    });
    const requested = pending(res, ['budget_raised']);
    const answers = await Promise.all([approve(requested.id, t.keys.admin), approve(requested.id, second)]);
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.statusCode === 409)?.json().code).toBe('approval_already_decided');

    const after = await campaign(c.id);
    expect(after).toMatchObject({ budget_minor: 5_000_000, version: c.version + 1 });
    const updates = (await auditOf(c.id)).filter((e) => e.action === 'campaign.updated');
    expect(updates).toHaveLength(1);
    expect(updates[0]?.details.changes).toEqual({ budgetMinor: { from: 50_000, to: 5_000_000 } });
    expect((await eventsOf(c.id)).filter((type) => type === 'campaign.updated')).toHaveLength(1);
  });

  it('refuses self-approval with 409 self_approval_forbidden and leaves the change pending', async () => {
    const requested = pending(await create({}), ['uncapped']);
    const res = await approve(requested.id, t.keys.marketing);
    expect(res.statusCode).toBe(409);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().code).toBe('self_approval_forbidden');
    expect((await campaign(requested.target_id)).status).toBe('draft');
    expect((await t.call('GET', `/v1/approvals/${requested.id}`)).json().status).toBe('pending');
    // Another key still can.
    expect((await approve(requested.id, second)).statusCode).toBe(200);
  });

  it('a rejection leaves the campaign as it was; the requester may withdraw their own request', async () => {
    const c = await safeCampaign();
    const res = await t.call('PATCH', `/v1/campaigns/${c.id}`, {
      key: t.keys.marketing,
      body: { discount: { type: 'percentage', basis_points: 9000 } },
    });
    const requested = pending(res, ['percentage_at_least']);
    const rejected = await reject(requested.id, t.keys.admin, 'too generous');
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect(rejected.json()).toMatchObject({
      status: 'rejected',
      decided_by: ids.admin,
      note: 'too generous',
    });
    expect(await campaign(c.id)).toMatchObject({ discount: SAFE.discount, version: c.version });
    expect((await approve(requested.id, second)).json().code).toBe('approval_already_decided');
    expect(await eventsOf(requested.id)).toEqual(['approval.requested', 'approval.rejected']);

    const withdrawn = pending(await create({}), ['uncapped']);
    const own = await reject(withdrawn.id, t.keys.marketing, 'wrong campaign');
    expect(own.json()).toMatchObject({ status: 'rejected', decided_by: ids.marketing });
  });

  it('refuses a stale approval (the campaign changed since the request) and applies nothing', async () => {
    const c = await safeCampaign();
    const requested = pending(
      await t.call('PATCH', `/v1/campaigns/${c.id}`, {
        key: t.keys.marketing,
        body: { redemption_cap: 10_000 },
      }),
      ['cap_raised'],
    );
    const renamed = await t.call('PATCH', `/v1/campaigns/${c.id}`, {
      key: t.keys.marketing,
      body: { name: 'Renamed meanwhile' },
    });
    expect(renamed.statusCode, renamed.body).toBe(200);
    const res = await approve(requested.id, t.keys.admin);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('approval_stale');
    expect(await campaign(c.id)).toMatchObject({ redemption_cap: 50, name: 'Renamed meanwhile' });

    // A status change makes it stale too: the approver judged an active campaign, not a paused one.
    const other = await safeCampaign();
    const raise = pending(
      await t.call('PATCH', `/v1/campaigns/${other.id}`, {
        key: t.keys.marketing,
        body: { budget_minor: null },
      }),
      ['budget_raised'],
    );
    await t.call('POST', `/v1/campaigns/${other.id}/pause`, { key: t.keys.marketing });
    expect((await approve(raise.id, t.keys.admin)).json().code).toBe('approval_stale');
    expect((await campaign(other.id)).budget_minor).toBe(50_000);
  });

  it('an approval not decided in time expires: listed as expired, audited, and no longer applicable', async () => {
    const requested = pending(await create({}), ['uncapped']);
    expect(new Date(requested.expires_at).getTime() - new Date(START).getTime()).toBe(72 * HOUR);
    const waiting = await t.call('GET', '/v1/approvals?status=pending&limit=200');
    expect(waiting.json().data.map((a: { id: string }) => a.id)).toContain(requested.id);

    clock.advance(72 * HOUR);
    const res = await approve(requested.id, t.keys.admin);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('approval_expired');
    expect((await campaign(requested.target_id)).status).toBe('draft');
    const read = (await t.call('GET', `/v1/approvals/${requested.id}`)).json();
    expect(read).toMatchObject({ status: 'expired', decided_by: null });
    const stillWaiting = await t.call('GET', '/v1/approvals?status=pending&limit=200');
    expect(stillWaiting.json().data.map((a: { id: string }) => a.id)).not.toContain(requested.id);
    expect((await auditOf(requested.id)).map((e) => [e.action, e.actor])).toEqual([
      ['approval.expired', 'promoguard'],
      ['approval.requested', ids.marketing],
    ]);
  });

  it('lists approvals newest first by status and campaign; deciding needs the marketing scope', async () => {
    clock.advance(HOUR);
    const first = pending(await create({}), ['uncapped']);
    clock.advance(1_000);
    const secondReq = pending(await create({}), ['uncapped']);
    const listed = await t.call('GET', `/v1/approvals?status=pending&limit=1`, { key: second });
    expect(listed.statusCode, listed.body).toBe(200);
    expect(listed.json().data.map((a: { id: string }) => a.id)).toEqual([secondReq.id]);
    const next = await t.call(
      'GET',
      `/v1/approvals?status=pending&limit=200&cursor=${listed.json().next_cursor}`,
    );
    expect(next.json().data.map((a: { id: string }) => a.id)).toContain(first.id);
    const byCampaign = await t.call('GET', `/v1/approvals?campaign_id=${first.target_id}`);
    expect(byCampaign.json().data.map((a: { id: string }) => a.id)).toEqual([first.id]);

    const checkout = await approve(first.id, t.keys.checkout);
    expect(checkout.statusCode).toBe(403);
    expect((await t.call('GET', '/v1/approvals/apr_01ARZ3NDEKTSV4RRFFQ69G5FAV')).json().code).toBe(
      'approval_not_found',
    );
  });
});
