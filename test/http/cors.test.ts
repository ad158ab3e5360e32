/**
 * A shop's page on its own origin calls the storefront routes with a customer token: a real CORS
 * preflight (OPTIONS with Origin and Access-Control-Request-Method/-Headers) against a listening
 * server, as a browser sends it. Only the origins CORS_ORIGINS names, and only the routes a customer
 * token may call, get CORS headers; everything else gets none, and nothing allows credentials.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { CORS_MAX_AGE_SECONDS } from '../../src/http/cors.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

const SHOP = 'https://shop.example';
const OTHER = 'https://evil.example';

async function listen(t: TestApp): Promise<string> {
  await t.server.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.server.server.address() as AddressInfo).port}`;
}

function preflight(base: string, path: string, origin: string, method: string, headers: string) {
  return fetch(base + path, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': headers,
    },
  });
}

/** No CORS header at all, and the answer is a problem document (404 for a preflight nobody serves). */
async function expectNoCors(res: Response): Promise<void> {
  for (const name of res.headers.keys()) expect(name).not.toMatch(/^access-control-/);
  if (res.status >= 400) expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  await res.arrayBuffer();
}

describe.each(backends)('CORS for the storefront routes ($name)', (backend) => {
  let t: TestApp;
  let base: string;
  let token: string;

  beforeAll(async () => {
    t = await startTestApp(backend, { env: { CORS_ORIGINS: `${SHOP}, http://localhost:3000` } });
    base = await listen(t);
    const issued = await t.call('POST', '/v1/customer-tokens', {
      key: t.keys.checkout,
      body: { customer_id: 'cus_cors' },
    });
    expect(issued.statusCode).toBe(201);
    token = issued.json().token;
  });

  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['GET', '/v1/customers/cus_cors/coupons', 'authorization'],
    ['GET', '/v1/customers/cus_cors/points?limit=5', 'authorization'],
    ['POST', '/v1/customers/cus_cors/conversions', 'authorization, content-type, idempotency-key'],
    ['POST', '/v1/validations', 'authorization, content-type'],
  ])(
    'a preflight for %s %s from an allowed origin is answered with the CORS headers',
    async (method, path, headers) => {
      const res = await preflight(base, path, SHOP, method, headers);
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(SHOP);
      expect(res.headers.get('access-control-allow-methods')?.split(/,\s*/)).toContain(method);
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']));
      expect(res.headers.get('access-control-max-age')).toBe(String(CORS_MAX_AGE_SECONDS));
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('vary')).toMatch(/origin/i);
    },
  );

  it('a preflight from an origin not on the list gets no CORS header', async () => {
    const res = await preflight(base, '/v1/customers/cus_cors/coupons', OTHER, 'GET', 'authorization');
    expect(res.status).toBe(404);
    await expectNoCors(res);
    // Exact match only: a look-alike (other scheme, port or a suffix) is another origin.
    for (const origin of [
      'http://shop.example',
      'https://shop.example:8443',
      'https://shop.example.evil.example',
    ]) {
      await expectNoCors(await preflight(base, '/v1/validations', origin, 'POST', 'authorization'));
    }
  });

  it('a preflight for a route a customer token may not call gets no CORS header', async () => {
    for (const [method, path] of [
      ['POST', '/v1/campaigns'],
      ['GET', '/v1/campaigns'],
      ['POST', '/v1/redemptions'],
      ['POST', '/v1/customers/cus_cors/points'],
      ['POST', '/v1/customer-tokens'],
      ['GET', '/v1/api-keys'],
      ['DELETE', '/v1/validations'],
    ] as const) {
      const res = await preflight(base, path, SHOP, method, 'authorization, content-type');
      expect(res.status, `${method} ${path}`).toBe(404);
      await expectNoCors(res);
    }
  });

  it('the actual call from the allowed origin is readable: its answer carries the origin and the request id is exposed', async () => {
    const res = await fetch(`${base}/v1/customers/cus_cors/coupons`, {
      headers: { origin: SHOP, authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(res.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('x-request-id');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    await res.arrayBuffer();

    // A refusal on a storefront route is readable too, so the page can tell the customer why.
    const refused = await fetch(`${base}/v1/customers/cus_cors/coupons`, {
      headers: { origin: SHOP, authorization: 'Bearer pgc_nope' },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    await refused.arrayBuffer();
  });

  it('the actual call from another origin, or to a non-storefront route, carries no CORS header', async () => {
    await expectNoCors(
      await fetch(`${base}/v1/customers/cus_cors/coupons`, {
        headers: { origin: OTHER, authorization: `Bearer ${token}` },
      }),
    );
    await expectNoCors(
      await fetch(`${base}/v1/campaigns`, {
        headers: { origin: SHOP, authorization: `Bearer ${t.keys.admin}` },
      }),
    );
    await expectNoCors(await fetch(`${base}/healthz`, { headers: { origin: SHOP } }));
  });
});

describe.each(backends)('CORS without CORS_ORIGINS ($name)', (backend) => {
  let t: TestApp;
  let base: string;

  beforeAll(async () => {
    t = await startTestApp(backend);
    base = await listen(t);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('answers no preflight and adds no CORS header anywhere', async () => {
    const res = await preflight(base, '/v1/validations', SHOP, 'POST', 'authorization, content-type');
    expect(res.status).toBe(404);
    await expectNoCors(res);
    await expectNoCors(await fetch(`${base}/healthz`, { headers: { origin: SHOP } }));
  });
});

describe('CORS_ORIGINS', () => {
  it('takes exact origins only: no wildcard, path, trailing slash or other scheme', () => {
    expect(loadConfig({ CORS_ORIGINS: `${SHOP},http://localhost:3000` }).CORS_ORIGINS).toBe(
      `${SHOP},http://localhost:3000`,
    );
    for (const bad of [
      '*',
      'https://*.shop.example',
      `${SHOP}/`,
      `${SHOP}/app`,
      'shop.example',
      'ftp://shop.example',
      'https://Shop.example',
    ]) {
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(/CORS_ORIGINS/);
    }
  });
});
