/**
 * `npm run bench:hostile`: hostile requests over every route of the served OpenAPI document (and the
 * undocumented ones: /docs, /openapi.json, unknown paths), with keys of every scope, customer tokens
 * and none, against the real server (`bin/promoguard.js serve`, shipped defaults) on a seeded
 * database. Prints what came back and whether anything changed:
 *
 *   - no 5xx, no connection left without an answer;
 *   - every error application/problem+json, its `code` on the closed list with that code's status,
 *     its request_id equal to X-Request-Id;
 *   - no request that would change something answered 2xx (each carries a reason to be refused:
 *     a refusing body, no valid key, or broken HTTP — checked when the request is made);
 *   - slow clients (a body that never arrives, bodies and headers dripped, silence) closed with 408
 *     within the configured timeouts, while the rest is served;
 *   - the database unchanged: every table's row count and a checksum of its money and counter
 *     columns before and after (on PGlite, read with the server stopped);
 *   - the server alive, with no error line in its log.
 *
 * Exits non-zero when any of these fails. Requests are drawn from a seeded generator (--seed), so a
 * failing run can be repeated.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../dist/config.js';
import { ERROR_CODES } from '../dist/errors.js';
import { openDatabase } from '../dist/store/connect.js';
import { Api } from './lib/api.mjs';
import { startServer } from './lib/server.mjs';

const USAGE = `npm run bench:hostile [-- options]

  --requests <n>       hostile requests in all (default 20000)
  --slow <n>           of them, slow clients held open at once (default 200)
  --concurrency <n>    requests in flight besides the slow ones (default 16)
  --backend <name>     postgres (default) or pglite
  --database-url <url> PostgreSQL maintenance database (default $BENCH_DATABASE_URL or
                       postgres://postgres@127.0.0.1:5432/postgres); a fresh database is made
  --seed <n>           the generator's seed (default 16)
  --keep-database      leave the PostgreSQL database in place (its name is printed)
  --help`;

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    slow: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    backend: { type: 'string', default: 'postgres' },
    'database-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    },
    seed: { type: 'string', default: '16' },
    'keep-database': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const TOTAL = Number(args.requests);
const SLOW = Math.min(Number(args.slow), TOTAL);
const CONCURRENCY = Number(args.concurrency);
const SEED = Number(args.seed);
if (
  ![TOTAL, SLOW, CONCURRENCY, SEED].every(Number.isInteger) ||
  !['postgres', 'pglite'].includes(args.backend)
) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const say = (line) => process.stdout.write(`${line}\n`);

// ------------------------------------------------------------------------------------------ random

/** mulberry32: small, fast, seeded; the same seed draws the same requests. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const int = (n) => Math.floor(random() * n);
const pick = (list) => list[int(list.length)];
const chance = (p) => random() < p;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ulid = () => Array.from({ length: 26 }, () => CROCKFORD[int(32)]).join('');

// ------------------------------------------------------------------------------------ the database

/**
 * Every table's row count and a checksum of all its rows (order-independent), and the sum of every
 * money and points column. The outbox's delivery stamp is left out: the relay sets it after the seed.
 */
async function fingerprint(query) {
  const columns = await query(`SELECT c.table_name AS t, c.column_name AS c, c.data_type AS type
                  FROM information_schema.columns c
                  JOIN information_schema.tables t USING (table_schema, table_name)
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                 ORDER BY c.table_name, c.ordinal_position`);
  const q = (name) => `"${name.replaceAll('"', '""')}"`;
  const tables = {};
  let money = 0n;
  for (const table of [...new Set(columns.map((r) => r.t))]) {
    const own = columns.filter((r) => r.t === table && !(table === 'outbox' && r.c === 'published_at'));
    const row = `row(${own.map((r) => q(r.c)).join(', ')})::text`;
    const amounts = own.filter(
      (r) =>
        ['smallint', 'integer', 'bigint', 'numeric'].includes(r.type) && /(_minor$|points|balance)/.test(r.c),
    );
    const sum = amounts.length ? amounts.map((r) => `coalesce(sum(${q(r.c)}), 0)`).join(' + ') : '0';
    const [result] = await query(
      `SELECT count(*)::text AS n, md5(coalesce(string_agg(${row}, ';' ORDER BY ${row}), '')) AS rows,
              (${sum})::text AS money FROM ${q(table)}`,
    );
    tables[table] = `${result.n} rows, md5 ${result.rows}`;
    money += BigInt(result.money);
  }
  return { tables, money };
}

// ------------------------------------------------------------------------------------------ setup

async function seed(api, adminKey) {
  const key = async (scopes) =>
    api.must(201, 'POST', '/v1/api-keys', { name: `hostile ${scopes.join(',')}`, scopes });
  const checkout = await key(['checkout']);
  const marketing = await key(['marketing']);
  const fraud = await key(['fraud']);
  const c = api.withKey(checkout.secret);
  const campaign = await api.must(201, 'POST', '/v1/campaigns', {
    name: 'Hostile',
    currency: 'USD',
    status: 'active',
    discount: { type: 'percentage', basis_points: 1500, max_discount_minor: 2000 },
    redemption_cap: 100,
    budget_minor: 100_000,
    starts_at: '2020-01-01T00:00:00Z',
  });
  await api.must(201, 'POST', `/v1/campaigns/${campaign.id}/codes`, { code: 'HOSTILE25' });
  await api.must(201, 'POST', `/v1/campaigns/${campaign.id}/codes`, { code: 'HOSTILE26' });
  const cart = { currency: 'USD', subtotal_minor: 8000 };
  const redemption = await c.must(
    201,
    'POST',
    '/v1/redemptions',
    { code: 'HOSTILE25', customer: { id: 'cus_hostile' }, cart, order_id: 'h-1' },
    { 'idempotency-key': 'hostile-1' },
  );
  const program = await api.must(201, 'POST', '/v1/points-programs', {
    name: 'Hostile points',
    currency: 'JPY',
  });
  await c.must(
    201,
    'POST',
    '/v1/customers/cus_hostile/points',
    { type: 'credit', points: 5000, reason: 'seed' },
    { 'idempotency-key': 'hostile-credit' },
  );
  const conversion = await c.must(
    201,
    'POST',
    '/v1/customers/cus_hostile/conversions',
    { program_id: program.id, points: 500 },
    { 'idempotency-key': 'hostile-convert' },
  );
  const own = await c.must(201, 'POST', '/v1/customer-tokens', { customer_id: 'cus_hostile' });
  const other = await c.must(201, 'POST', '/v1/customer-tokens', { customer_id: 'cus_other' });
  const entry = await api.must(201, 'POST', '/v1/lists', {
    list: 'block',
    type: 'email',
    value: 'hostile@example.com',
    reason: 'seed',
  });
  const rules = await api.must(200, 'GET', '/v1/rules');
  const day = 86_400_000;
  const decisions = await api.call(
    'GET',
    `/v1/decisions?from=${new Date(Date.now() - day).toISOString()}&to=${new Date(Date.now() + day).toISOString()}`,
  );
  const first = (list) => (Array.isArray(list) ? list[0] : list?.data?.[0]);
  return {
    keys: {
      admin: adminKey,
      checkout: checkout.secret,
      marketing: marketing.secret,
      fraud: fraud.secret,
      'token (own)': own.token,
      'token (other)': other.token,
    },
    real: {
      cmp: campaign.id,
      red: redemption.id,
      prg: program.id,
      key: checkout.id,
      rule: first(rules)?.id,
      dec: first(decisions.body)?.id,
      entry: String(entry.id),
      code: pick(['HOSTILE26', conversion.coupon?.code ?? 'HOSTILE26']),
      customer: 'cus_hostile',
      partner: 'partner-a',
    },
  };
}

// ------------------------------------------------------------------------------------------ routes

/** Every route of the OpenAPI document, with its parameters and body schema; plus undocumented ones. */
function routesOf(doc) {
  const routes = [];
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = op.requestBody?.content?.['application/json']?.schema ?? null;
      routes.push({
        method: method.toUpperCase(),
        template,
        params: (op.parameters ?? []).filter((p) => p.in === 'path'),
        query: (op.parameters ?? []).filter((p) => p.in === 'query'),
        idempotency: (op.parameters ?? []).some((p) => p.in === 'header' && p.name === 'idempotency-key'),
        body,
      });
    }
  }
  for (const template of ['/openapi.json', '/docs', '/docs/static/index.html', '/v1/nothing-here', '/']) {
    routes.push({
      method: 'GET',
      template,
      params: [],
      query: [],
      idempotency: false,
      body: null,
      undocumented: true,
    });
  }
  return routes;
}

const mutating = (method) => !['GET', 'HEAD', 'OPTIONS'].includes(method);

// ---------------------------------------------------------------------------------- hostile values

const HOSTILE_SEGMENTS = [
  '',
  '..',
  '%2e%2e',
  '%2E%2E%2F%2E%2E',
  '%00',
  'a%00b',
  '%ZZ',
  '%',
  '%E0%A4%A',
  '%ED%A0%80',
  '%F0%9F%8E%89',
  '%C0%AF',
  "'%20OR%201=1--",
  '-1',
  '0',
  '9'.repeat(40),
  '1e3',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'x'.repeat(300),
  'A'.repeat(2000),
  '%2Fetc%2Fpasswd',
  'cmp_',
  'red_IIIIIIIIIIIIIIIIIIIIIIIIII',
  'CMP_01M801SXGP63QE024QTNCC5Q4P',
  '%20',
  '%0d%0aX-Injected:%201',
];

function paramValue(route, param, real) {
  if (chance(0.5)) return pick(HOSTILE_SEGMENTS);
  const pattern = param.schema?.pattern ?? '';
  const prefix = /^\^([a-z]+)_/.exec(pattern)?.[1];
  if (prefix) return chance(0.5) && real[prefix] ? real[prefix] : `${prefix}_${ulid()}`;
  if (param.schema?.type === 'integer') return chance(0.5) ? real.entry : String(1 + int(1_000_000));
  if (route.template.includes('/customers/')) return chance(0.6) ? real.customer : `cus_${int(1e6)}`;
  if (param.name === 'code') return chance(0.5) ? real.code : `NOPE${int(1e6)}`;
  if (param.name === 'partner') return chance(0.5) ? real.partner : `p${int(1e6)}`;
  return `x${int(1e6)}`;
}

function pathOf(route, real) {
  return route.template.replace(/\{([^}]+)\}/g, (_, name) => {
    const param = route.params.find((p) => p.name === name) ?? { name };
    return encodeSegment(paramValue(route, param, real));
  });
}

/** Values are already percent-encoded where they mean to be; anything else is encoded here. */
function encodeSegment(value) {
  return value.replace(/[^A-Za-z0-9\-._~%!$&'()*+,;=:@]/g, (ch) => encodeURIComponent(ch));
}

const HOSTILE_QUERY_VALUES = [
  '',
  '0',
  '-1',
  '201',
  '1.5',
  '1e2',
  '99999999999999999999',
  'NaN',
  'true',
  '[]',
  '%00',
  '%',
  '%E0%A4%A',
  'x'.repeat(5000),
  'cmp_00000000000000000000000000',
  '2026-13-45T99:99:99Z',
  '0000-01-01T00:00:00Z',
  "'%20OR%201=1",
  'csv',
  'CSV',
  'xml',
];

function queryOf(route) {
  const names = [
    ...route.query.map((p) => p.name),
    'limit',
    'cursor',
    '__proto__',
    'constructor',
    'x',
    'limit[]',
  ];
  const pairs = Array.from(
    { length: 1 + int(4) },
    () => `${pick(names)}=${encodeSegment(pick(HOSTILE_QUERY_VALUES))}`,
  );
  return `?${pairs.join('&')}`;
}

/** A body that passes the schema's shape where it can: the base the mutations start from. */
function sample(schema, depth = 0) {
  if (!schema || depth > 8) return 'x';
  if (schema.anyOf) return sample(schema.anyOf.find((s) => s.type !== 'null') ?? schema.anyOf[0], depth + 1);
  if (schema.oneOf) return sample(schema.oneOf[0], depth + 1);
  if (schema.enum) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  switch ([schema.type].flat()[0]) {
    case 'object': {
      const out = {};
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if ((schema.required ?? []).includes(key) || chance(0.5)) out[key] = sample(property, depth + 1);
      }
      return out;
    }
    case 'array':
      return [sample(schema.items, depth + 1)];
    case 'integer':
      return Math.max(1, schema.minimum ?? 1);
    case 'number':
      return 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return schema.format === 'date-time'
        ? '2026-01-01T00:00:00Z'
        : 'x'.repeat(Math.max(1, schema.minLength ?? 1));
  }
}

const jsonType = (v) =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;

/** The JSON types a schema admits, or null when it admits anything. */
function admits(schema) {
  if (!schema) return null;
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) {
    const sets = variants.map(admits);
    if (sets.includes(null)) return null;
    return new Set(sets.flatMap((s) => [...s]));
  }
  if (schema.type === undefined) return null;
  const types = new Set([schema.type].flat());
  if (types.has('number')) types.add('integer');
  return types;
}

const CONFUSED = [
  123,
  -1,
  1.5,
  1e308,
  -0,
  'str',
  '',
  '1',
  'true',
  true,
  false,
  null,
  [],
  [1, 'a'],
  {},
  { a: 1 },
  '9'.repeat(40),
];

/**
 * The body with 1–3 properties replaced by a value of a JSON type their schema does not admit; a
 * top-level non-object when the route has no properties to confuse. Returns null when no refusal can
 * be made certain this way (a route without a body schema accepts any JSON).
 */
function typeConfused(route) {
  if (!route.body) return null;
  const base = sample(route.body);
  const properties = Object.entries(route.body.properties ?? {});
  let certain = false;
  for (let n = 1 + int(3); n > 0 && properties.length > 0; n--) {
    const [key, schema] = pick(properties);
    const allowed = admits(schema);
    const wrong = CONFUSED.filter((v) => allowed === null || !allowed.has(jsonType(v)));
    base[key] = pick(wrong);
    if (allowed !== null) certain = true;
  }
  if (!certain) return JSON.stringify(pick([[], 'x', 1, null, true, [base]]));
  return JSON.stringify(base);
}

/** JSON text with `insert` placed right after one of the opening braces of `text`. */
function injectIntoObject(text, insert) {
  const braces = [...text.matchAll(/\{/g)].map((m) => m.index);
  if (braces.length === 0) return `{${insert}}`;
  const at = pick(braces) + 1;
  const rest = text.slice(at);
  return `${text.slice(0, at)}${insert}${rest.startsWith('}') ? '' : ','}${rest}`;
}

const baseText = (route) => JSON.stringify(route.body ? sample(route.body) : {});

const BODY_LIMIT = 1024 * 1024;
const MAX_DEPTH = 32;

/** Bodies the server must refuse whatever the route: each is [category, text, content-type]. */
const CERTAIN_BODIES = {
  deep: (route) => {
    const depth = MAX_DEPTH + 1 + int(chance(0.5) ? 20 : 20_000);
    const inner = chance(0.5)
      ? `${'['.repeat(depth)}${']'.repeat(depth)}`
      : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    return injectIntoObject(baseText(route), `"metadata":${inner}`);
  },
  unstorable: (route) => {
    const bad = pick(['\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\udc00\ud800', '\ud83d']);
    // Into a string the schema names where there is one (a key of the body's own otherwise), so that
    // a parser keeping the last of two equal keys cannot drop it. JSON.stringify writes a lone
    // surrogate as its \u escape, as a client would.
    const body = route.body ? sample(route.body) : {};
    const strings = Object.entries(body).filter(([, v]) => typeof v === 'string');
    if (strings.length > 0 && chance(0.7)) body[pick(strings)[0]] = bad;
    else body[bad] = 'v';
    return JSON.stringify(body);
  },
  prototype: (route) =>
    injectIntoObject(
      baseText(route),
      pick([
        '"__proto__":{"polluted":"yes"}',
        '"constructor":{"prototype":{"polluted":"yes"}}',
        '"__proto__":[]',
        '"x_hostile":{"__proto__":{"isAdmin":true}}',
      ]),
    ),
  malformedJson: (route) =>
    pick([
      '',
      '{',
      '{"a":1,}',
      "{'a':1}",
      '{"a":NaN}',
      '{"a":Infinity}',
      '{"a":01}',
      '{"a":1}garbage',
      '/* c */{}',
      '{"a":"\\x41"}',
      '{"a":"unterminated}',
      '[1,2',
      `${baseText(route).slice(0, -1)}`,
      'null null',
      '{"a":1}{"b":2}',
      '\u0000',
    ]),
  tooLarge: (route) => injectIntoObject(baseText(route), `"pad":"${'x'.repeat(BODY_LIMIT + int(1000))}"`),
};

const WRONG_CONTENT_TYPES = [
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/octet-stream',
  'application/merge-patch+json',
  'application/problem+json',
  'application/jsonx',
  'json',
  'application/json-seq',
  '*/*',
];

// ---------------------------------------------------------------------------------------- requests

/**
 * One hostile request: { category, transport: 'http' | 'raw' | 'slow', method, path, headers,
 * body (text), raw (bytes), refusedBecause }. Every request that would change something carries
 * `refusedBecause`, the reason it cannot succeed; the generator throws when it cannot give one.
 */
function makeRequest(category, routes, seeded) {
  const { keys, real } = seeded;
  const keyNames = [...Object.keys(keys), 'none', 'bogus'];
  const route = category === 'query' ? pick(routes.filter((r) => r.method === 'GET')) : pick(routes);
  // Admin passes every scoped route, so the body gets parsed and judged; the other keys and tokens
  // are refused by scope or customer, or reach the routes they may call.
  const keyName = category === 'auth' ? pick(['none', 'bogus']) : chance(0.4) ? 'admin' : pick(keyNames);
  const headers = {};
  if (keyName === 'bogus') {
    headers.authorization = pick([
      'Bearer pgk_nope',
      `Bearer pgk_${randomBytes(24).toString('base64url')}`,
      `Bearer pgc_${randomBytes(40).toString('base64url')}`,
      `Bearer ${keys.checkout.slice(0, -2)}xx`,
      'Basic YWRtaW46YWRtaW4=',
      'Bearer',
      `Bearer ${'a'.repeat(2000)}`,
      `bearer ${keys['token (own)'].replace(/.$/, 'A')}`,
    ]);
  } else if (keyName !== 'none') headers.authorization = `Bearer ${keys[keyName]}`;
  if (route.idempotency && chance(0.8)) headers['idempotency-key'] = `hostile-${int(1e9)}`;
  let path = pathOf(route, real) + (category === 'query' || chance(0.1) ? queryOf(route) : '');
  let method = route.method;
  let body = null;
  let refusedBecause = keyName === 'none' || keyName === 'bogus' ? 'no valid key' : null;
  let transport = 'http';
  let raw = null;

  const certain = (name) => {
    body = CERTAIN_BODIES[name](route);
    headers['content-type'] = 'application/json';
    refusedBecause ??= `body: ${name}`;
  };

  switch (category) {
    case 'deep':
    case 'unstorable':
    case 'prototype':
    case 'malformedJson':
    case 'tooLarge':
      certain(category);
      break;
    case 'typeConfusion': {
      body = typeConfused(route);
      headers['content-type'] = 'application/json';
      if (body === null) certain(pick(['deep', 'unstorable', 'prototype', 'malformedJson']));
      else refusedBecause ??= 'body: a property of a type its schema does not admit';
      break;
    }
    case 'hugeString': {
      const base = route.body ? sample(route.body) : {};
      const strings = Object.entries(route.body?.properties ?? {}).filter(
        ([, s]) => s.type === 'string' && typeof s.maxLength === 'number',
      );
      if (strings.length > 0) {
        const [key, schema] = pick(strings);
        base[key] = pick(['x', 'é', '🎉', '\u202E', '\u0301']).repeat(schema.maxLength + 1 + int(200_000));
        body = JSON.stringify(base);
        headers['content-type'] = 'application/json';
        refusedBecause ??= `body: ${key} longer than its maxLength`;
      } else certain('tooLarge');
      break;
    }
    case 'wrongContentType': {
      // Never empty: an empty body is no body, whatever its type, and a route without one accepts it.
      body = typeConfused(route) ?? CERTAIN_BODIES.prototype(route);
      const type = pick([...WRONG_CONTENT_TYPES, null]);
      if (type) headers['content-type'] = type;
      refusedBecause ??= `content-type ${type ?? '(none)'}`;
      break;
    }
    case 'wrongMethod': {
      method = pick(['PUT', 'DELETE', 'PATCH', 'POST', 'TRACE', 'PROPFIND', 'SEARCH', 'HEAD', 'OPTIONS']);
      if (method !== 'HEAD') certain(pick(['deep', 'unstorable', 'prototype', 'malformedJson']));
      break;
    }
    case 'pathParams':
    case 'query':
    case 'auth': {
      if (mutating(method) || chance(0.3)) {
        if (category === 'auth' && route.body) {
          body = JSON.stringify(sample(route.body));
          headers['content-type'] = 'application/json';
        } else certain(pick(['deep', 'unstorable', 'prototype', 'malformedJson']));
      }
      break;
    }
    case 'oversizedHeaders': {
      transport = 'raw';
      const host = 'Host: 127.0.0.1\r\n';
      const auth = headers.authorization ? `Authorization: ${headers.authorization}\r\n` : '';
      const variant = int(4);
      const line =
        variant === 0
          ? `${method} ${path} HTTP/1.1\r\n${host}${auth}X-Big: ${'a'.repeat(17_000 + int(50_000))}\r\n`
          : variant === 1
            ? `${method} ${path}?pad=${'p'.repeat(17_000)} HTTP/1.1\r\n${host}${auth}`
            : variant === 2
              ? `${method} ${path} HTTP/1.1\r\n${host}${auth}${Array.from({ length: 2500 }, (_, i) => `X-H${i}: v\r\n`).join('')}`
              : `${method} ${path} HTTP/1.1\r\n${host}${auth}Cookie: ${'c=1; '.repeat(4000)}\r\n`;
      raw = `${line}Content-Length: 0\r\n\r\n`;
      refusedBecause = 'headers past the limit';
      break;
    }
    case 'malformedHttp': {
      transport = 'raw';
      const auth = headers.authorization ? `Authorization: ${headers.authorization}\r\n` : '';
      const json = 'Content-Type: application/json\r\n';
      const form = pick([
        () => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}${json}Content-Length: abc\r\n\r\n{}`,
        () =>
          `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}${json}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} `,
        () => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}${json}Content-Length: -1\r\n\r\n`,
        () =>
          `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}${json}Transfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        () =>
          `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}${json}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
        () =>
          `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}${json}Transfer-Encoding: gzip, chunked, identity\r\n\r\n`,
        () => `${method} ${path}\u0000 HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
        () => `${method} ${path} x HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
        () => `${method} ${path} HTTP/9.9\r\nHost: x\r\n${auth}\r\n`,
        () => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}X-Folded: a\r\n b\r\n\r\n`,
        () => `FOO ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
        () => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}Bad Header: v\r\n\r\n`,
        () => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}X-Ctl: a\u0001b\r\n\r\n`,
        () => `${method} ${path} HTTP/1.1\nHost: x\n\n`,
        () => 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
        () => `${method} ${path} HTTP/1.1\r\n${auth}\r\n`,
        () => 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n',
        () => '\r\n\r\n\r\n',
        () => randomBytes(64).toString('latin1'),
      ])();
      raw = form;
      refusedBecause = 'broken HTTP';
      break;
    }
    default:
      throw new Error(`unknown category ${category}`);
  }
  if (mutating(method) && transport === 'http' && !refusedBecause) {
    throw new Error(`bench bug: ${category} ${method} ${path} has no certain reason to be refused`);
  }
  if (path.length > 60_000) path = path.slice(0, 60_000);
  return { category, transport, method, path, headers, body, raw, refusedBecause, keyName };
}

/** Slow clients: each holds its connection until the server closes it. */
function makeSlow(i, seeded) {
  const auth = `Authorization: Bearer ${seeded.keys.checkout}\r\n`;
  const head = `POST /v1/validations HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\n`;
  switch (i % 4) {
    case 0:
      return {
        category: 'slow: body never arrives',
        send: `${head}Content-Length: 400\r\n\r\n{"code":`,
        drip: null,
      };
    case 1:
      return {
        category: 'slow: body dripped',
        send: `${head}Transfer-Encoding: chunked\r\n\r\n`,
        drip: { part: '1\r\n \r\n', everyMs: 500 },
      };
    case 2:
      return {
        category: 'slow: headers dripped',
        send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n',
        drip: { part: 'X-Drip: 1\r\n', everyMs: 500 },
      };
    default:
      return { category: 'slow: silence', send: null, drip: null };
  }
}

// --------------------------------------------------------------------------------------- transport

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function sendHttp(base, req) {
  return new Promise((resolve) => {
    const started = performance.now();
    const request = http.request(
      `${base}${req.path}`,
      { method: req.method, headers: req.headers, agent, timeout: 30_000 },
      (response) => {
        const chunks = [];
        let size = 0;
        response.on('data', (chunk) => {
          size += chunk.length;
          if (size < 2_000_000) chunks.push(chunk);
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            ms: performance.now() - started,
          }),
        );
        response.on('error', (err) =>
          resolve({ error: err.code ?? err.message, ms: performance.now() - started }),
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error('no answer in 30 s')));
    request.on('error', (err) =>
      resolve({ error: err.code ?? err.message, ms: performance.now() - started }),
    );
    // An explicit length: Node's client sends a GET's or DELETE's body without one, which a server
    // must read as the next request on the connection.
    if (req.body !== null) request.setHeader('content-length', Buffer.byteLength(req.body));
    if (req.body !== null) request.end(req.body);
    else request.end();
  });
}

/** Writes raw bytes; reads one answer (to its Content-Length or the connection's end). */
function sendRaw(port, bytes, drip, giveUpMs = 30_000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const started = performance.now();
    const chunks = [];
    let timer = null;
    let done = false;
    const finish = (extra = {}) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({
        ...parseRaw(Buffer.concat(chunks).toString('latin1')),
        ms: performance.now() - started,
        ...extra,
      });
    };
    const giveUp = setTimeout(() => finish({ heldOpen: true }), giveUpMs);
    socket.on('connect', () => {
      if (bytes !== null) socket.write(Buffer.from(bytes, 'latin1'));
      if (drip) timer = setInterval(() => socket.writable && socket.write(drip.part), drip.everyMs);
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const parsed = parseRaw(Buffer.concat(chunks).toString('latin1'));
      if (parsed.complete) finish();
    });
    socket.on('error', () => {});
    socket.on('close', () => finish());
  });
}

function parseRaw(text) {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0)
    return text.length
      ? { error: 'unparsable answer', rawText: text.slice(0, 200) }
      : { error: 'closed without an answer' };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = text.slice(end + 4);
  const length = Number(headers['content-length']);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  return {
    status,
    headers,
    body,
    complete: Number.isFinite(length) && Buffer.byteLength(body, 'latin1') >= length,
  };
}

// ------------------------------------------------------------------------------------------ judging

const SAFE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

class Tally {
  constructor() {
    this.total = 0;
    this.byCategory = new Map();
    this.statuses = new Map();
    this.codes = new Map();
    /** Per failed check: how many, and the first few requests that failed it. */
    this.failures = new Map();
    this.latencies = [];
  }

  fail(check, where) {
    const entry = this.failures.get(check) ?? { count: 0, samples: [] };
    this.failures.set(check, entry);
    entry.count++;
    if (entry.samples.length < 5) entry.samples.push(where);
  }

  failed(check) {
    return this.failures.get(check) ?? { count: 0, samples: [] };
  }

  add(req, res) {
    this.total++;
    const cat = this.byCategory.get(req.category) ?? new Map();
    this.byCategory.set(req.category, cat);
    const status = res.error ? (res.heldOpen ? 'held open' : 'no answer') : res.status;
    cat.set(status, (cat.get(status) ?? 0) + 1);
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.latencies.push(res.ms);
    const where =
      `${req.category} ${req.method ?? ''} ${(req.path ?? '').slice(0, 100)} -> ${status} ` +
      `${(res.body ?? res.rawText ?? res.error ?? '').slice(0, 200)}`;
    if (res.error) return this.fail('noAnswer', where);
    if (status >= 500) this.fail('fiveXX', where);
    if (status < 400 && req.refusedBecause && mutating(req.method ?? 'GET')) this.fail('mutated', where);
    const requestId = res.headers['x-request-id'];
    if (typeof requestId !== 'string' || !SAFE_ID.test(requestId)) this.fail('requestId', where);
    if (status < 400) return;
    if (!/^application\/problem\+json/.test(String(res.headers['content-type'])))
      return this.fail('notProblem', where);
    if (req.method === 'HEAD') return;
    let problem = null;
    try {
      problem = JSON.parse(res.body);
    } catch {
      problem = null;
    }
    const code = problem?.code;
    this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
    if (
      !problem ||
      ERROR_CODES[code]?.status !== status ||
      problem.status !== status ||
      problem.request_id !== requestId
    ) {
      this.fail('badCode', where);
    }
  }
}

// -------------------------------------------------------------------------------------------- run

const WEIGHTS = {
  deep: 12,
  typeConfusion: 14,
  hugeString: 5,
  unstorable: 10,
  prototype: 9,
  wrongContentType: 8,
  malformedJson: 6,
  tooLarge: 1,
  wrongMethod: 5,
  pathParams: 9,
  query: 6,
  auth: 5,
  oversizedHeaders: 3,
  malformedHttp: 7,
};
const weighted = Object.entries(WEIGHTS).flatMap(([name, weight]) => Array(weight).fill(name));

const cleanups = [];
async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (err) {
      process.stderr.write(`cleanup: ${err.message}\n`);
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => cleanup().then(() => process.exit(130)));

async function main() {
  let env;
  let readState;
  if (args.backend === 'postgres') {
    const admin = new pg.Client({
      connectionString: args['database-url'],
      application_name: 'promoguard-bench',
    });
    await admin.connect();
    cleanups.push(() => admin.end());
    const name = `promoguard_hostile_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    cleanups.push(async () => {
      if (args['keep-database']) say(`kept database ${name}`);
      else await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    });
    const url = new URL(args['database-url']);
    url.pathname = `/${name}`;
    env = { DATABASE_URL: url.toString() };
    const client = new pg.Client({ connectionString: url.toString(), application_name: 'promoguard-bench' });
    await client.connect();
    cleanups.push(() => client.end());
    readState = () => fingerprint(async (text) => (await client.query(text)).rows);
  } else {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'promoguard-hostile-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    env = { PROMOGUARD_DATA_DIR: dir };
    readState = async () => {
      const opened = await openDatabase({ dataDir: dir });
      try {
        return await fingerprint(async (text) => (await sql.raw(text).execute(opened.db)).rows);
      } finally {
        await opened.close();
      }
    };
  }

  // The shipped defaults, approvals included.
  env = { ...env, APPROVALS: 'on' };
  let server = await startServer(env);
  cleanups.push(() => server.stop());
  const adminKey = server.adminKey;
  const api = new Api(server.url, adminKey);
  const seeded = await seed(api, adminKey);
  const doc = (await api.call('GET', '/openapi.json')).body;
  const routes = routesOf(doc);
  const documented = routes.filter((r) => !r.undocumented).length;

  // On PGlite the data folder is the server's alone: the state is read with the server stopped.
  if (args.backend === 'pglite') {
    await server.stop();
    cleanups.pop();
  }
  const before = await readState();
  say(`seeded; the state before: ${Object.keys(before.tables).length} tables`);
  if (args.backend === 'pglite') {
    server = await startServer(env);
    cleanups.push(() => server.stop());
  }
  const port = Number(new URL(server.url).port);
  const logErrorsBefore = server.log.errors;

  say(
    `hostile: ${TOTAL} requests (${SLOW} slow clients among them) over ${documented} documented routes ` +
      `(from /openapi.json) and ${routes.length - documented} others, ${args.backend}, seed ${SEED}, ` +
      `${CONCURRENCY} in flight + the slow ones`,
  );
  const tally = new Tally();
  const started = performance.now();

  // The slow clients start first and hold their connections while everything else is sent.
  const slowTimes = [];
  const slow = Array.from({ length: SLOW }, (_, i) => makeSlow(i, seeded)).map(async (s) => {
    const res = await sendRaw(port, s.send, s.drip, 60_000);
    slowTimes.push({ category: s.category, ms: res.ms, status: res.status ?? null });
    tally.add({ category: s.category, method: 'POST', refusedBecause: 'slow' }, res);
  });

  let made = 0;
  const worker = async () => {
    while (made < TOTAL - SLOW) {
      made++;
      const req = makeRequest(pick(weighted), routes, seeded);
      const res =
        req.transport === 'raw' ? await sendRaw(port, req.raw, null) : await sendHttp(server.url, req);
      tally.add(req, res);
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, worker), ...slow]);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();

  const health = await fetch(`${server.url}/healthz`).then(
    (r) => r.status,
    (err) => `unreachable (${err.message})`,
  );
  const logErrors = server.log.errors - logErrorsBefore;
  const lastErrors = server.log.lastErrors.slice();
  const exited = server.exited();
  if (args.backend === 'pglite') {
    await server.stop();
    cleanups.pop();
  }
  // Background work triggered by the seed (the outbox relay) settles before the second reading.
  const after = await readState();

  // ------------------------------------------------------------------------------------ report
  const sortedStatuses = [...tally.statuses.entries()].sort((a, b) =>
    String(a[0]).localeCompare(String(b[0])),
  );
  say(`\nsent ${tally.total} in ${seconds.toFixed(1)} s (${Math.round(tally.total / seconds)}/s)`);
  say(`answers by status: ${sortedStatuses.map(([s, n]) => `${s} × ${n}`).join(', ')}`);
  say('\nby kind of request:');
  for (const [cat, statuses] of [...tally.byCategory.entries()].sort()) {
    const n = [...statuses.values()].reduce((a, b) => a + b, 0);
    const parts = [...statuses.entries()].sort((a, b) => b[1] - a[1]).map(([s, k]) => `${s}×${k}`);
    say(`  ${cat.padEnd(26)} ${String(n).padStart(6)}  ${parts.join(' ')}`);
  }
  say(
    `\nproblem codes: ${[...tally.codes.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} × ${n}`)
      .join(', ')}`,
  );

  const byKind = new Map();
  for (const t of slowTimes) byKind.set(t.category, [...(byKind.get(t.category) ?? []), t]);
  const defaults = loadConfig({});
  say(
    `\nslow clients (the shipped timeouts: headers ${defaults.HTTP_HEADERS_TIMEOUT_MS} ms, ` +
      `whole request ${defaults.HTTP_REQUEST_TIMEOUT_MS} ms):`,
  );
  for (const [kind, list] of byKind) {
    const ms = list.map((t) => t.ms).sort((a, b) => a - b);
    const statuses = [...new Set(list.map((t) => t.status))].join(',');
    say(
      `  ${kind.padEnd(26)} ${String(list.length).padStart(4)} closed after median ${(ms[ms.length >> 1] / 1000).toFixed(2)} s, ` +
        `max ${(ms[ms.length - 1] / 1000).toFixed(2)} s, answered ${statuses}`,
    );
  }
  const lat = tally.latencies.slice().sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
  say(`latency of every answer (ms): p50 ${q(0.5)}, p99 ${q(0.99)}, max ${q(1)}`);

  const changed = Object.keys({ ...before.tables, ...after.tables }).filter(
    (t) => before.tables[t] !== after.tables[t],
  );
  say(`money and points in all tables: ${before.money} before, ${after.money} after`);
  const check = (name, key) => [name, tally.failed(key).count, tally.failed(key).samples];
  const checks = [
    check('5xx answers', 'fiveXX'),
    check('errors not application/problem+json', 'notProblem'),
    check('problems with a code off the closed list, or another status or request_id', 'badCode'),
    check('answers without a plain X-Request-Id', 'requestId'),
    check('connections closed or held without an answer', 'noAnswer'),
    check('changing requests answered 2xx/3xx', 'mutated'),
    [
      `tables changed (of ${Object.keys(before.tables).length}; row counts, checksums of every row)`,
      changed.length + (before.money === after.money ? 0 : 1),
      changed.map((t) => `${t}: ${before.tables[t]} -> ${after.tables[t]}`),
    ],
    ['error lines in the server log', logErrors, lastErrors],
    [
      'server down afterwards',
      exited || health !== 200 ? 1 : 0,
      exited ? [JSON.stringify(exited)] : [String(health)],
    ],
  ];
  say('');
  let failed = false;
  for (const [name, n, samples] of checks) {
    say(`${n === 0 ? 'ok  ' : 'FAIL'} ${String(n).padStart(6)}  ${name}`);
    if (n !== 0) {
      failed = true;
      for (const s of samples.slice(0, 5)) say(`         ${s}`);
    }
  }
  return failed ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`${err.stack ?? err}\n`);
} finally {
  await cleanup();
}
process.exit(code);
