/**
 * The typed client (clients/typescript) against a live server on a loopback port: the whole checkout
 * path, problem documents as typed errors, the CSV export, and the generated types matching the
 * document the server serves.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPromoguardClient,
  exportCodesCsv,
  idempotent,
  isProblem,
  ProblemError,
  type PromoguardClient,
  unwrap,
} from '../../clients/typescript/src/index.js';
import { SCHEMA_FILE, schemaSource } from '../../scripts/client-generate.mjs';
import { startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const cart = { currency: 'USD', subtotal_minor: 10_000 };

describe.each(backends.map((b) => [b.name, b] as const))('typed client on %s', (_name, backend) => {
  let t: TestApp;
  let marketing: PromoguardClient;
  let checkout: PromoguardClient;

  beforeAll(async () => {
    t = await startTestApp(backend);
    await t.server.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.server.server.address() as AddressInfo;
    const baseUrl = `http://127.0.0.1:${port}`;
    marketing = createPromoguardClient({ baseUrl, credential: t.keys.marketing });
    checkout = createPromoguardClient({ baseUrl, credential: t.keys.checkout });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('drives campaign → code → validation → redemption → rollback over HTTP', async () => {
    const campaign = await unwrap(
      marketing.POST('/v1/campaigns', {
        body: {
          name: 'Client sale',
          currency: 'USD',
          discount: { type: 'fixed_amount', amount_minor: 700 },
          status: 'active',
          starts_at: '2020-01-01T00:00:00Z',
        },
      }),
    );
    expect(campaign.status).toBe('active');

    const text = unique('CLI');
    const created = await unwrap(
      marketing.POST('/v1/campaigns/{id}/codes', {
        params: { path: { id: campaign.id } },
        body: { code: text },
      }),
    );
    expect(created).toMatchObject({ code: text, campaign_id: campaign.id });

    const page = await unwrap(
      marketing.GET('/v1/campaigns/{id}/codes', { params: { path: { id: campaign.id } } }),
    );
    expect(page.data.map((c) => c.code)).toEqual([text]);
    expect(page.next_cursor).toBeNull();

    const customer = { id: unique('cus') };
    const validation = await unwrap(
      checkout.POST('/v1/validations', { body: { code: text, customer, cart } }),
    );
    expect(validation).toMatchObject({ valid: true, discount_minor: 700, campaign_id: campaign.id });

    const header = idempotent();
    const redemption = await unwrap(
      checkout.POST('/v1/redemptions', {
        params: { header },
        body: { code: text, customer, cart, order_id: 'o-1' },
      }),
    );
    expect(redemption).toMatchObject({ status: 'redeemed', discount_minor: 700, order_id: 'o-1' });
    const repeat = await unwrap(
      checkout.POST('/v1/redemptions', {
        params: { header },
        body: { code: text, customer, cart, order_id: 'o-1' },
      }),
    );
    expect(repeat.id).toBe(redemption.id);

    const rolledBack = await unwrap(
      checkout.POST('/v1/redemptions/{id}/rollback', {
        params: { path: { id: redemption.id } },
        body: { reason: 'order cancelled' },
      }),
    );
    expect(rolledBack).toMatchObject({
      id: redemption.id,
      status: 'rolled_back',
      rollback_reason: 'order cancelled',
    });
  });

  it('reads an error answer as a typed problem document', async () => {
    const missing = await marketing.GET('/v1/campaigns/{id}', {
      params: { path: { id: 'cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV' } },
    });
    expect(missing.data).toBeUndefined();
    expect(missing.response.status).toBe(404);
    expect(missing.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    // `code` is the closed union of error codes: a misspelt comparison would not compile.
    expect(missing.error?.code).toBe('campaign_not_found');
    expect(missing.error?.request_id).toBe(missing.response.headers.get('x-request-id'));

    const refused = checkout.POST('/v1/redemptions', {
      params: { header: idempotent() },
      body: { code: unique('NOPE'), customer: { id: 'cus_x' }, cart },
    });
    const error = await unwrap(refused).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).status).toBe(422);
    expect((error as ProblemError).problem.code).toBe('redemption_refused');

    // The types require the header; a caller that gets around them and sends none gets the stable code.
    const keyless = await checkout.POST('/v1/redemptions', {
      params: { header: {} as ReturnType<typeof idempotent> },
      body: { code: 'X', customer: { id: 'cus_x' }, cart },
    });
    expect(isProblem(keyless.error)).toBe(true);
    expect(keyless.error?.code).toBe('idempotency_key_required');
  });

  it('exports codes as CSV text, and a scope the key lacks as a typed 403', async () => {
    const campaign = await unwrap(
      marketing.POST('/v1/campaigns', {
        body: { name: 'CSV', currency: 'USD', discount: { type: 'percentage', basis_points: 1000 } },
      }),
    );
    const text = unique('CSV');
    await unwrap(
      marketing.POST('/v1/campaigns/{id}/codes', {
        params: { path: { id: campaign.id } },
        body: { code: text },
      }),
    );
    const csv = await exportCodesCsv(marketing, campaign.id);
    expect(csv.split('\n')[0]).toMatch(/^code\b/);
    expect(csv).toContain(text);

    const forbidden = await checkout.GET('/v1/campaigns/{id}/codes', {
      params: { path: { id: campaign.id } },
    });
    expect(forbidden.response.status).toBe(403);
    expect(forbidden.error?.code).toBe('forbidden');
  });

  it(`${SCHEMA_FILE} is what npm run client:generate makes of the served document`, async () => {
    const served = await t.call('GET', '/openapi.json', { key: null });
    expect(served.statusCode).toBe(200);
    const checkedIn = readFileSync(new URL(`../../${SCHEMA_FILE}`, import.meta.url), 'utf8');
    // On a mismatch: run `npm run client:generate` and commit the result.
    expect(await schemaSource(served.json())).toBe(checkedIn);
  });
});
