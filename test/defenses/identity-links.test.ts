/**
 * Linking customers into persons through the real HTTP app, on every database backend: alias tricks
 * (provider tags, look-alike letters, made-up units, transposed streets) link; an identifier shared by
 * IDENTITY_SHARED_LIMIT other customers stops linking, exactly also under concurrency, and stays visible
 * as a feature; the identity features and the default pack tell a household from a ring.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionOf, eventsOf, fraudKey, redeem } from '../risk/helpers.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const LIMIT = 3;
const DAY = 86_400_000;

const address = (line1: string, line2?: string) => ({
  line1,
  ...(line2 ? { line2 } : {}),
  city: 'Portland',
  region: 'OR',
  postal_code: '97201',
  country: 'US',
});

const ageDays = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();

describe.each(backends.map((b) => [b.name, b] as const))('identity links on %s', (_name, backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend, {
      clock: new TestClock(NOW),
      env: { IDENTITY_SHARED_LIMIT: String(LIMIT) },
    });
  });
  afterAll(async () => t?.close());

  const oncePerPerson = () =>
    campaignWithCode(t, { per_customer_cap: 1, per_person_cap: 1 } as Record<string, unknown>);

  type Contexts = (tag: string) => [Record<string, unknown>, Record<string, unknown>];
  const cases: [string, Contexts][] = [
    [
      'a Proton +tag on another Proton domain',
      (x) => [{ email: `jane.${x}@proton.me` }, { email: `jane${x}+shop@pm.me` }],
    ],
    [
      'a Fastmail subdomain',
      (x) => [{ email: `jane${x}@fastmail.com` }, { email: `deals@jane${x}.fastmail.com` }],
    ],
    [
      'a Cyrillic letter in the email',
      (x) => [{ email: `shopper${x}@gmail.com` }, { email: `shоpper${x}@gmail.com` }],
    ],
    [
      'a made-up unit number',
      (x) => [
        { shipping_address: address(`${x} Cedar Lane`) },
        { shipping_address: address(`${x} Cedar Lane`, 'Apt 31') },
      ],
    ],
    [
      'transposed street words',
      (x) => [
        { shipping_address: address(`${x} Oak Hill Road`) },
        { shipping_address: address(`${x} Hill Oak Road`, '#4') },
      ],
    ],
  ];

  it.each(cases)(
    'links %s into one person: the once-per-person offer is refused to the second account',
    async (_t, contexts) => {
      const { code } = await oncePerPerson();
      const [a, b] = contexts(String(Math.floor(Math.random() * 1e9)));
      const first = await redeem(t, code, unique('cus_a'), { context: a });
      expect(first.statusCode).toBe(201);
      const second = await redeem(t, code, unique('cus_b'), { context: b });
      expect(second.statusCode).toBe(422);
      expect(second.json().reason).toBe('person_cap_reached');
    },
  );

  it('stops linking through an identifier shared by the limit, and still shows it shared', async () => {
    const { code } = await campaignWithCode(t, { per_person_cap: 100 } as Record<string, unknown>);
    const locker = address(`${unique('')} Station Plaza`, 'Parcel locker');
    const seen: { linked: number; shared: number }[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const r = await redeem(t, code, unique('cus_locker'), {
        // New accounts: an established one links through no shared address (a mover is not the former tenant).
        context: { shipping_address: locker, account_created_at: ageDays(2) },
      });
      expect(r.statusCode).toBe(201);
      const f = decisionOf(r).features;
      seen.push({
        linked: f['linked_accounts'] as number,
        shared: f['shared_identifier_customers'] as number,
      });
    }
    // The first LIMIT customers link (1, 2, 3); from then on the locker links nobody new.
    expect(seen.map((s) => s.linked)).toEqual([1, 2, 3, 1, 1]);
    expect(seen.map((s) => s.shared)).toEqual([0, 1, 2, 3, 4]);
    // A once-per-person offer: the customers past the limit are persons of their own.
    const once = await oncePerPerson();
    const late = await redeem(t, once.code, unique('cus_late1'), { context: { shipping_address: locker } });
    const later = await redeem(t, once.code, unique('cus_late2'), { context: { shipping_address: locker } });
    expect([late.statusCode, later.statusCode]).toEqual([201, 201]);
  });

  it('tells a household of established accounts from a ring of new ones (default pack)', async () => {
    const { code } = await campaignWithCode(t, {});
    const card = unique('card_family_');
    const home = address(`${unique('')} Maple Street`);
    const household = [];
    for (let i = 0; i < LIMIT; i++) {
      household.push(
        await redeem(t, code, unique('cus_family'), {
          context: {
            payment_fingerprint: card,
            shipping_address: home,
            account_created_at: ageDays(300 + i),
          },
        }),
      );
    }
    const last = decisionOf(household[LIMIT - 1] as never);
    expect(last.features['linked_accounts']).toBe(LIMIT);
    expect(last.features['linked_new_accounts']).toBe(0);
    expect(last.features['linked_cards']).toBe(1);
    expect(last.features['linked_strong_links']).toBe(1);
    expect(household.map((r) => decisionOf(r).action)).toEqual(['allow', 'allow', 'allow']);

    const ringCard = unique('card_ring_');
    const ring = [];
    for (let i = 0; i < LIMIT; i++) {
      ring.push(
        await redeem(t, code, unique('cus_ring'), {
          context: { payment_fingerprint: ringCard, account_created_at: ageDays(0.1) },
        }),
      );
    }
    expect(ring.map((r) => decisionOf(r).action)).toEqual(['allow', 'allow', 'review']);
    expect(decisionOf(ring[LIMIT - 1] as never).because).toContain('rule_default_linked_accounts');
  });

  it('colleagues shipping to the office suite, each their own way, are not held', async () => {
    const { code } = await campaignWithCode(t, {});
    const street = `${unique('')} Commerce Blvd`;
    const actions = [];
    for (const suite of ['Suite 400', 'Ste 400', '#400', undefined, 'Suite 400']) {
      const r = await redeem(t, code, unique('cus_office'), {
        context: {
          shipping_address: address(street, suite),
          payment_fingerprint: unique('card_own_'),
          account_created_at: ageDays(200),
        },
      });
      actions.push(decisionOf(r).action);
    }
    expect(actions).toEqual(['allow', 'allow', 'allow', 'allow', 'allow']);
  });

  it('flags a throwaway email domain as a feature', async () => {
    const { code } = await campaignWithCode(t, {});
    const r = await redeem(t, code, unique('cus_temp'), {
      context: { email: `x${unique('')}@mailinator.com` },
    });
    expect(decisionOf(r).features['email_disposable']).toBe(1);
    const s = await redeem(t, code, unique('cus_real'), { context: { email: `x${unique('')}@gmail.com` } });
    expect(decisionOf(s).features['email_disposable']).toBe(0);
  });

  it("reads the campaign's declared planned peak as an expected rate", async () => {
    const { code } = await campaignWithCode(t, {
      planned_peaks: [
        {
          starts_at: new Date(NOW.getTime() - 60_000).toISOString(),
          ends_at: new Date(NOW.getTime() + 3_600_000).toISOString(),
          expected_per_minute: 25,
        },
      ],
    } as Record<string, unknown>);
    const r = await redeem(t, code, unique('cus_sale'), {});
    expect(decisionOf(r).features['campaign_planned_per_hour']).toBe(1500);
  });

  it('lets an analyst split a person: audited, evented, and the shared card links them no more', async () => {
    const { code } = await oncePerPerson();
    const card = unique('card_split_');
    const [a, b, c] = [unique('cus_sa'), unique('cus_sb'), unique('cus_sc')];
    // Both use the card on an everyday offer first: that links them.
    const everyday = await campaignWithCode(t, {});
    for (const who of [a, b]) {
      expect(
        (await redeem(t, everyday.code, who, { context: { payment_fingerprint: card } })).statusCode,
      ).toBe(201);
    }
    expect((await redeem(t, code, a, { context: { payment_fingerprint: card } })).statusCode).toBe(201);
    const refused = await redeem(t, code, b, { context: { payment_fingerprint: card } });
    expect(refused.json().reason).toBe('person_cap_reached');
    const fraud = await fraudKey(t);
    const links = await t.call('GET', `/v1/customers/${a}/links`, { key: fraud });
    const personId = links.json().person_id as string;
    expect(links.json().customers).toEqual([a, b].sort());

    const split = await t.call('POST', `/v1/persons/${personId}/split`, {
      key: fraud,
      body: { customer_ids: [b], reason: 'roommates, one card for rent' },
    });
    expect(split.statusCode).toBe(200);
    expect(split.json()).toMatchObject({ person_id: personId, customer_ids: [b], unlinked_identifiers: 1 });
    // b is a person of its own now, and the card both used links nobody, also a newcomer.
    expect((await redeem(t, code, b, { context: { payment_fingerprint: card } })).statusCode).toBe(201);
    expect((await redeem(t, code, c, { context: { payment_fingerprint: card } })).statusCode).toBe(201);
    const after = await t.call('GET', `/v1/customers/${b}/links`, { key: fraud });
    expect(after.json().person_id).toBe(split.json().new_person_id);

    expect(await eventsOf(t, personId)).toContain('person.split');
    const audit = await t.call('GET', `/v1/audit?action=person.split&resource=${personId}`, { key: fraud });
    expect(audit.statusCode).toBe(200);
    expect(audit.json().data).toHaveLength(1);

    const unknown = await t.call('POST', '/v1/persons/per_nope/split', {
      key: fraud,
      body: { customer_ids: [b], reason: 'x' },
    });
    expect(unknown.statusCode).toBe(404);
    const everyone = await t.call('POST', `/v1/persons/${personId}/split`, {
      key: fraud,
      body: { customer_ids: [a], reason: 'x' },
    });
    expect(everyone.statusCode).toBe(400);
    const checkout = await t.call('POST', `/v1/persons/${personId}/split`, {
      key: t.keys.checkout,
      body: { customer_ids: [a], reason: 'x' },
    });
    expect(checkout.statusCode).toBe(403);
  });

  it.runIf(backend.name === 'postgres')(
    'holds the shared-identifier limit exactly under concurrent redemptions',
    async () => {
      const { code } = await campaignWithCode(t, { per_person_cap: 100 } as Record<string, unknown>);
      const card = unique('card_rush_');
      const prefix = unique('cus_rush');
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          redeem(t, code, `${prefix}_${i}`, { context: { payment_fingerprint: card } }),
        ),
      );
      expect(results.every((r) => r.statusCode === 201)).toBe(true);
      const groups = await sql<{ size: number }>`
        SELECT count(*)::int AS size FROM identity_nodes
         WHERE key LIKE ${`customer:${prefix}_%`} GROUP BY person_id ORDER BY size DESC`.execute(t.app.db);
      // Exactly LIMIT customers linked through the card; every later one is a person of its own.
      expect(groups.rows.map((g) => g.size)).toEqual([LIMIT, ...Array(12 - LIMIT).fill(1)]);
    },
  );
});
