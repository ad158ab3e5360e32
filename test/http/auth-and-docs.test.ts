/**
 * Who may call what (API keys and their scopes), request ids on every answer, and the public surface
 * that needs no key: the OpenAPI contract, the docs page and the health probes.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  campaignBody,
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

type Method = 'GET' | 'POST' | 'PATCH';
type JsonSchema = Record<string, unknown>;

/** /v1 routes the README's table must list: a floor that catches a parser finding too few. */
const KNOWN_ROUTES = [
  'POST /v1/campaigns',
  'GET /v1/campaigns',
  'GET /v1/campaigns/{id}',
  'PATCH /v1/campaigns/{id}',
  'POST /v1/campaigns/{id}/pause',
  'POST /v1/campaigns/{id}/resume',
  'POST /v1/campaigns/{id}/codes',
  'GET /v1/campaigns/{id}/codes',
  'POST /v1/codes/{code}/revoke',
  'POST /v1/validations',
  'POST /v1/redemptions',
  'GET /v1/redemptions',
  'GET /v1/redemptions/{id}',
  'POST /v1/redemptions/{id}/rollback',
];

/**
 * The /v1 routes of the README's API table (the first `| route | scope | what |` table), as
 * `METHOD /path`. A cell lists routes in backticks with three shorthands: a bare method shares the next
 * path (`GET`, `PATCH /v1/x`), a bare path replaces the last segment of the previous one
 * (`POST /v1/x/pause`, `/resume`), and `[…]` marks an optional tail (`GET /v1/x[/{id}]`).
 */
function readmeRoutes(): string[] {
  const lines = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n');
  const header = lines.findIndex((l) => /^\| route \| scope \|/.test(l));
  const table: string[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    table.push(line);
  }
  const routes: string[] = [];
  const add = (method: string, path: string) => {
    const optional = /^(.*)\[(.*)\]$/.exec(path);
    const paths = optional ? [optional[1], `${optional[1]}${optional[2]}`] : [path];
    for (const p of paths) routes.push(`${method} ${p}`);
  };
  for (const line of table) {
    const cell = line.split('|')[1] ?? '';
    let pending: string[] = [];
    let last: { method: string; path: string } | undefined;
    for (const [, token = ''] of cell.matchAll(/`([^`]+)`/g)) {
      const full = /^(GET|POST|PUT|PATCH|DELETE) (\/\S+)$/.exec(token);
      if (/^(GET|POST|PUT|PATCH|DELETE)$/.test(token)) {
        pending.push(token);
      } else if (full?.[1] && full[2]) {
        last = { method: full[1], path: full[2] };
        for (const method of [...pending, full[1]]) add(method, full[2]);
        pending = [];
      } else if (token.startsWith('/') && last) {
        last = { method: last.method, path: last.path.replace(/\/[^/]+$/, token) };
        add(last.method, last.path);
      }
    }
  }
  return routes.filter((r) => r.includes(' /v1/'));
}

/** The document with each `$ref` replaced by what it points at, so a schema can be read in place. */
function inlineRefs<T>(doc: T): T {
  const inline = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(inline);
    if (node === null || typeof node !== 'object') return node;
    const ref = (node as { $ref?: unknown }).$ref;
    if (typeof ref === 'string') {
      const target = ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], doc);
      return inline(target);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inline(v)]));
  };
  return inline(doc) as T;
}

/** Every object schema inside `schema` that lists properties but does not close them. */
function openObjects(schema: unknown, path = ''): string[] {
  if (Array.isArray(schema)) return schema.flatMap((s, i) => openObjects(s, `${path}/${i}`));
  if (schema === null || typeof schema !== 'object') return [];
  const s = schema as JsonSchema;
  const here = s.type === 'object' && s.properties && s.additionalProperties !== false ? [path || '/'] : [];
  return [...here, ...Object.entries(s).flatMap(([k, v]) => openObjects(v, `${path}/${k}`))];
}

describe.each(backends.map((b) => [b.name, b] as const))(
  'auth, request ids and docs on %s',
  (_name, backend) => {
    let t: TestApp;
    let campaignId: string;
    let code: string;
    let redemptionId: string;

    beforeAll(async () => {
      t = await startTestApp(backend);
      ({ campaignId, code } = await campaignWithCode(t));
      const r = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: checkoutBody(code),
        headers: { 'idempotency-key': 'auth-setup' },
      });
      redemptionId = r.json().id;
    });
    afterAll(async () => t?.close());

    function expectUnauthorized(res: LightMyRequestResponse) {
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'unauthorized', status: 401 });
    }

    describe('authentication', () => {
      it('no key, a malformed header or an unknown key is 401 with www-authenticate: Bearer', async () => {
        const unknownKey = `pgk_${randomBytes(32).toString('base64url')}`;
        const variants: (Record<string, string> | null)[] = [
          null,
          { authorization: '' },
          { authorization: 'Bearer' },
          { authorization: 'Bearer ' },
          { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
          { authorization: `Bearer ${t.keys.admin} extra` },
          { authorization: `Token ${t.keys.admin}` },
          { authorization: t.keys.admin },
          { authorization: `Bearer ${unknownKey}` },
          { authorization: `Bearer ${t.keys.admin.slice(0, -1)}` },
          { authorization: 'Bearer not-a-promoguard-key' },
          { authorization: `Bearer ${'x'.repeat(5000)}` },
        ];
        for (const headers of variants) {
          for (const [method, url] of [
            ['GET', '/v1/campaigns'],
            ['POST', '/v1/validations'],
          ] as const) {
            const res = await t.call(method, url, {
              key: null,
              ...(headers ? { headers } : {}),
              ...(method === 'POST' ? { body: checkoutBody(code) } : {}),
            });
            expectUnauthorized(res);
          }
        }
      });

      it('a revoked key is refused', async () => {
        // A key that was never used: no verification of it can be cached anywhere.
        const unused = await t.app.apiKeys.create('to revoke unused', ['admin'], 'test');
        expect(await t.app.apiKeys.revoke(unused.key.id, 'test', null)).toBe(true);
        expectUnauthorized(await t.call('GET', '/v1/campaigns', { key: unused.secret }));

        // A key in use: the node that revokes it refuses it from the next request on (other nodes within
        // the documented 5 s cache window, which a single node does not exercise).
        const used = await t.app.apiKeys.create('to revoke used', ['marketing'], 'test');
        expect((await t.call('GET', '/v1/campaigns', { key: used.secret })).statusCode).toBe(200);
        expect(await t.app.apiKeys.revoke(used.key.id, 'test', null)).toBe(true);
        expectUnauthorized(await t.call('GET', '/v1/campaigns', { key: used.secret }));
      });

      it('authenticates before it validates: an anonymous invalid request is 401, not 400', async () => {
        const invalidJson = await t.server.inject({
          method: 'POST',
          url: '/v1/campaigns',
          headers: { 'content-type': 'application/json' },
          payload: '{"name": ',
        });
        expectUnauthorized(invalidJson);

        expectUnauthorized(await t.call('POST', '/v1/campaigns', { key: null, body: { nonsense: true } }));
        expectUnauthorized(await t.call('POST', '/v1/redemptions', { key: null, body: {} }));
        expectUnauthorized(await t.call('GET', '/v1/campaigns/not-an-id', { key: null }));
        expectUnauthorized(await t.call('GET', '/v1/campaigns?limit=100000', { key: null }));

        // The same for a key of the wrong scope: 403 before any validation.
        const forbidden = await t.call('POST', '/v1/campaigns', {
          key: t.keys.checkout,
          body: { nonsense: true },
        });
        expect(forbidden.statusCode).toBe(403);
      });
    });

    describe('scopes', () => {
      const marketingRoutes = (): [Method, string, unknown?][] => [
        ['POST', '/v1/campaigns', campaignBody()],
        ['GET', '/v1/campaigns'],
        ['GET', `/v1/campaigns/${campaignId}`],
        ['PATCH', `/v1/campaigns/${campaignId}`, { name: 'Renamed' }],
        ['POST', `/v1/campaigns/${campaignId}/pause`, {}],
        ['POST', `/v1/campaigns/${campaignId}/resume`, {}],
        ['POST', `/v1/campaigns/${campaignId}/codes`, { code: unique('SCOPE') }],
        ['GET', `/v1/campaigns/${campaignId}/codes`],
        ['POST', `/v1/codes/${unique('NOPE')}/revoke`, {}],
      ];
      const checkoutRoutes = (): [Method, string, unknown?][] => [
        ['POST', '/v1/validations', checkoutBody(code)],
        ['POST', '/v1/redemptions', checkoutBody(code)],
        ['POST', `/v1/redemptions/${redemptionId}/rollback`, {}],
      ];
      const readerRoutes = (): [Method, string][] => [
        ['GET', `/v1/redemptions?campaign_id=${campaignId}`],
        ['GET', `/v1/redemptions/${redemptionId}`],
      ];

      function send(key: string, [method, url, body]: [Method, string, unknown?]) {
        return t.call(method, url, {
          key,
          ...(body === undefined ? {} : { body }),
          headers: method === 'POST' ? { 'idempotency-key': unique('scope-') } : {},
        });
      }

      it('a checkout key on marketing routes is 403 forbidden', async () => {
        for (const route of marketingRoutes()) {
          const res = await send(t.keys.checkout, route);
          expect(res.statusCode, `${route[0]} ${route[1]}: ${res.body}`).toBe(403);
          expect(res.json()).toMatchObject({ code: 'forbidden', status: 403 });
        }
      });

      it('a marketing key on checkout routes is 403 forbidden', async () => {
        for (const route of checkoutRoutes()) {
          const res = await send(t.keys.marketing, route);
          expect(res.statusCode, `${route[0]} ${route[1]}: ${res.body}`).toBe(403);
          expect(res.json()).toMatchObject({ code: 'forbidden', status: 403 });
        }
        // Nothing happened: the redemption is still in force.
        const read = await t.call('GET', `/v1/redemptions/${redemptionId}`, { key: t.keys.checkout });
        expect(read.json().status).toBe('redeemed');
      });

      it('both may read redemptions', async () => {
        for (const key of [t.keys.checkout, t.keys.marketing]) {
          for (const route of readerRoutes()) {
            const res = await send(key, route);
            expect(res.statusCode, `${route[0]} ${route[1]}: ${res.body}`).toBe(200);
          }
        }
      });

      it('an admin key works everywhere', async () => {
        for (const route of [...marketingRoutes(), ...readerRoutes(), ...checkoutRoutes()]) {
          const res = await send(t.keys.admin, route);
          expect(res.statusCode, `${route[0]} ${route[1]}: ${res.body}`).not.toBe(401);
          expect(res.statusCode, `${route[0]} ${route[1]}: ${res.body}`).not.toBe(403);
          // Revoking an unknown code is the one expected failure of this list.
          if (!route[1].startsWith('/v1/codes/'))
            expect(res.statusCode, `${route[0]} ${route[1]}`).toBeLessThan(300);
        }
      });
    });

    describe('customer tokens', () => {
      async function tokenFor(customerId: string): Promise<string> {
        const r = await t.call('POST', '/v1/customer-tokens', {
          key: t.keys.checkout,
          body: { customer_id: customerId },
        });
        expect(r.statusCode, r.body).toBe(201);
        return r.json().token as string;
      }

      it("act for their own customer, named in the path or the body, and are 403 for another's", async () => {
        const tok = await tokenFor('cus_tok_own');
        const own = [
          ['GET', '/v1/customers/cus_tok_own/points', undefined],
          ['POST', '/v1/validations', checkoutBody(code, { customer: { id: 'cus_tok_own' } })],
        ] as const;
        for (const [method, url, body] of own) {
          const res = await t.call(method, url, { key: tok, ...(body ? { body } : {}) });
          expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(200);
        }
        const other = [
          ['GET', '/v1/customers/cus_tok_other/points', undefined],
          ['GET', '/v1/customers/cus_tok_other/coupons', undefined],
          ['POST', '/v1/validations', checkoutBody(code, { customer: { id: 'cus_tok_other' } })],
        ] as const;
        for (const [method, url, body] of other) {
          const res = await t.call(method, url, { key: tok, ...(body ? { body } : {}) });
          expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(403);
          expect(res.json()).toMatchObject({
            code: 'forbidden',
            detail: 'a customer token acts only on its own customer',
          });
        }
      });

      it('get the field errors of their own invalid request (400)', async () => {
        const tok = await tokenFor('cus_tok_invalid');
        const res = await t.call('POST', '/v1/validations', {
          key: tok,
          body: { ...checkoutBody(code, { customer: { id: 'cus_tok_invalid' } }), colour: 'red' },
        });
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json().errors.map((e: { field: string }) => e.field)).toContain('body/colour');
      });
    });

    describe('request ids', () => {
      it('every response carries x-request-id, and problems repeat it in the body', async () => {
        const responses = [
          await t.call('GET', '/healthz', { key: null }),
          await t.call('GET', '/readyz', { key: null }),
          await t.call('GET', '/openapi.json', { key: null }),
          await t.call('GET', '/docs', { key: null }),
          await t.call('GET', '/v1/campaigns'),
          await t.call('GET', '/v1/campaigns', { key: null }),
          await t.call('GET', '/v1/campaigns', { key: t.keys.checkout }),
          await t.call('GET', '/v1/no-such-route'),
          await t.call('POST', '/v1/campaigns', { body: {} }),
          await t.call('GET', `/v1/campaigns/${campaignId}/codes?format=csv`),
        ];
        const ids = new Set<string>();
        for (const res of responses) {
          const id = res.headers['x-request-id'];
          expect(id, `${res.statusCode} ${res.body.slice(0, 80)}`).toMatch(/^req_[0-9A-HJKMNP-TV-Z]{26}$/);
          ids.add(id as string);
          if (res.statusCode >= 400) expect(res.json().request_id).toBe(id);
        }
        expect(ids.size).toBe(responses.length);
      });

      it("echoes a caller's safe X-Request-Id and replaces an unsafe one", async () => {
        for (const safe of ['trace-123', 'a.b_c:d-E9', 'x'.repeat(64)]) {
          const res = await t.call('GET', '/v1/campaigns/cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV', {
            headers: { 'x-request-id': safe },
          });
          expect(res.headers['x-request-id']).toBe(safe);
          expect(res.json().request_id).toBe(safe);
        }
        for (const unsafe of [
          'has spaces in it',
          'line\nbreak',
          'x'.repeat(200),
          'x'.repeat(65),
          'quote"d',
          'ünï',
        ]) {
          const res = await t.call('GET', '/v1/campaigns/cmp_01ARZ3NDEKTSV4RRFFQ69G5FAV', {
            headers: { 'x-request-id': unsafe },
          });
          expect(res.headers['x-request-id'], JSON.stringify(unsafe)).toMatch(/^req_[0-9A-HJKMNP-TV-Z]{26}$/);
          expect(res.json().request_id).toBe(res.headers['x-request-id']);
        }
      });
    });

    describe('public surface', () => {
      it('GET /openapi.json is OpenAPI 3.1 and lists every /v1 route of the README', async () => {
        const res = await t.call('GET', '/openapi.json', { key: null });
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        const doc = res.json();
        expect(doc.openapi).toMatch(/^3\.1\./);
        expect(doc.info.title).toEqual(expect.any(String));

        const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
          ([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
        );
        const listed = readmeRoutes();
        expect(listed).toEqual(expect.arrayContaining(KNOWN_ROUTES));
        for (const route of listed) expect(documented).toContain(route);
      });

      it('request bodies reject unknown fields, and every operation documents its responses', async () => {
        const doc = inlineRefs((await t.call('GET', '/openapi.json', { key: null })).json());
        for (const where of readmeRoutes()) {
          const [method = '', path = ''] = where.split(' ');
          const op = doc.paths[path]?.[method.toLowerCase()];
          expect(op, `${where} is documented`).toBeDefined();
          const schema = op.requestBody?.content?.['application/json']?.schema;
          if (method !== 'GET' && KNOWN_ROUTES.includes(where)) {
            expect(schema, `${where} has a request body schema`).toBeDefined();
          }
          if (schema !== undefined) {
            expect(openObjects(schema), `${where}: open objects`).toEqual([]);
            const branches = (schema.anyOf ?? schema.oneOf ?? [schema]) as JsonSchema[];
            for (const branch of branches) expect(branch.additionalProperties, where).toBe(false);
          }
          // A campaign change may also be answered 202 (waiting for approval): each success has a body.
          const success = Object.keys(op.responses).filter((s) => s.startsWith('2'));
          expect(success.length, `${where} documents a success`).toBeGreaterThan(0);
          for (const status of success) {
            const content = op.responses[status].content as Record<string, { schema: unknown }>;
            expect(Object.values(content).length, `${where} ${status}`).toBeGreaterThan(0);
            for (const media of Object.values(content)) expect(media.schema, where).toBeDefined();
          }
          for (const status of ['401', '403']) {
            expect(op.responses[status], `${where} documents ${status}`).toBeDefined();
          }
        }
        const redeem = doc.paths['/v1/redemptions'].post;
        expect(redeem.parameters).toContainEqual(
          expect.objectContaining({ in: 'header', name: 'idempotency-key' }),
        );
      });

      it('/docs serves HTML', async () => {
        const res = await t.call('GET', '/docs', { key: null });
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/html/);
        expect(res.body).toMatch(/<html/i);
      });

      it('/healthz and /readyz answer without a key', async () => {
        const health = await t.call('GET', '/healthz', { key: null });
        expect(health.statusCode).toBe(200);
        expect(health.json()).toEqual({ status: 'ok' });
        const ready = await t.call('GET', '/readyz', { key: null });
        expect(ready.statusCode).toBe(200);
        expect(ready.json()).toEqual({ status: 'ready', database: backend.name });
      });
    });
  },
);
