/**
 * What a client meets when it speaks broken HTTP, sends huge headers, nests JSON without end, or sends
 * so slowly that it would hold a connection: each is refused with a problem document
 * (application/problem+json, a code from the closed list, the request id as in X-Request-Id) and
 * the connection is closed. Sent byte for byte over a raw TCP socket to a listening server, since
 * these never reach Fastify's inject.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { buildServer } from '../../src/http/server.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

interface RawResponse {
  status: number | null;
  headers: Record<string, string>;
  body: string;
  /** From the first byte sent until the server closed the connection. */
  closedAfterMs: number;
}

interface Exchange {
  /** Sent at once on connecting. */
  send?: string | Buffer;
  /** Sent one after the other, `everyMs` apart, until the server closes the connection. */
  drip?: { parts: string[]; everyMs: number };
  /** Give up (and fail) after this long without the server closing. */
  timeoutMs?: number;
}

/** Sends raw bytes and reads the first answer, waiting until the server closes the connection. */
function exchange(port: number, { send, drip, timeoutMs = 10_000 }: Exchange): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let started = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => {
      started = performance.now();
      if (send !== undefined) socket.write(send);
      if (drip) {
        let next = 0;
        timer = setInterval(() => {
          if (!socket.writable) return;
          socket.write(drip.parts[next % drip.parts.length] as string);
          next++;
        }, drip.everyMs);
      }
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    // A reset after the answer was read is the server dropping the socket; the answer still counts.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(giveUp);
      clearInterval(timer);
      resolve({
        ...parse(Buffer.concat(chunks).toString('latin1')),
        closedAfterMs: performance.now() - started,
      });
    });
  });
}

function parse(text: string): Omit<RawResponse, 'closedAfterMs'> {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { status: null, headers: {}, body: text };
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = /^HTTP\/1\.[01] (\d{3}) /.exec(statusLine)?.[1];
  return { status: status ? Number(status) : null, headers, body: text.slice(end + 4) };
}

/** The answer is the problem document of `code`, with the status that code maps to. */
function expectProblem(res: RawResponse, code: keyof typeof ERROR_CODES): void {
  const where = `${res.status} ${JSON.stringify(res.headers)} ${res.body.slice(0, 300)}`;
  expect(res.status, where).toBe(ERROR_CODES[code].status);
  expect(res.headers['content-type'], where).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(res.body) as Record<string, unknown>;
  expect(problem.code, where).toBe(code);
  expect(problem.status, where).toBe(ERROR_CODES[code].status);
  expect(problem.type, where).toBe(`urn:promoguard:problem:${code}`);
  expect(problem.request_id, where).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
  expect(res.headers['x-request-id'], where).toBe(problem.request_id);
}

const CHECKOUT_HEAD = 'POST /v1/validations HTTP/1.1\r\nHost: localhost\r\n';
const JSON_HEAD = `${CHECKOUT_HEAD}Content-Type: application/json\r\n`;

describe.each(backends)('malformed HTTP and hostile bodies over a raw socket ($name)', (backend) => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    t = await startTestApp(backend);
    await t.server.listen({ port: 0, host: '127.0.0.1' });
    port = (t.server.server.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('a request line and headers past HTTP_MAX_HEADER_BYTES is 431 request_header_too_large', async () => {
    const huge = 'a'.repeat(t.app.config.HTTP_MAX_HEADER_BYTES + 1);
    expectProblem(
      await exchange(port, { send: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${huge}\r\n\r\n` }),
      'request_header_too_large',
    );
    expectProblem(
      await exchange(port, { send: `GET /${huge} HTTP/1.1\r\nHost: x\r\n\r\n` }),
      'request_header_too_large',
    );
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: value\r\n`).join('');
    expectProblem(
      await exchange(port, { send: `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n` }),
      'request_header_too_large',
    );
  });

  const malformed: [string, string][] = [
    ['a Content-Length that is not a number', `${JSON_HEAD}Content-Length: abc\r\n\r\n{}`],
    ['two different Content-Lengths', `${JSON_HEAD}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} `],
    [
      'Transfer-Encoding: chunked together with Content-Length',
      `${JSON_HEAD}Transfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
    ],
    [
      'a chunk size that is not hexadecimal',
      `${JSON_HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    ],
    ['a NUL in the path', 'GET /healthz\u0000x HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a space in the path', 'GET /health z HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/9.9', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['a folded header line (obs-fold)', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n'],
    ['an unknown method', 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a header name with a space', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n'],
    ['a bare LF line ending', 'GET /healthz HTTP/1.1\nHost: x\n\n'],
    ['a control character in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\n\r\n'],
    ['an HTTP/2 preface on an HTTP/1.1 port', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['a missing Host on HTTP/1.1', 'GET /healthz HTTP/1.1\r\n\r\n'],
  ];
  it.each(malformed)('%s is 400 malformed_request', async (_name, request) => {
    expectProblem(await exchange(port, { send: request }), 'malformed_request');
  });

  it('a refused connection is logged without the bytes it sent (its Authorization stays out of the log)', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logged = await buildServer(t.app, { logger: { level: 'debug', stream } });
    try {
      await logged.listen({ port: 0, host: '127.0.0.1' });
      const own = (logged.server.address() as net.AddressInfo).port;
      const secret = 'pgk_thisMustNeverBeLogged';
      expectProblem(
        await exchange(own, {
          send: `GET /healthz HTTP/9.9\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\n\r\n`,
        }),
        'malformed_request',
      );
      const log = lines.join('');
      expect(log).toContain('refused on the connection');
      // Neither as text nor as the byte list a logged Buffer becomes.
      expect(log).not.toContain(secret);
      expect(log).not.toContain(Buffer.from(secret).join(','));
    } finally {
      await logged.close();
    }
  });

  it('CONNECT is 404 not_found, not a dropped connection', async () => {
    expectProblem(
      await exchange(port, { send: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n' }),
      'not_found',
    );
  });

  it('an Expect other than 100-continue is ignored and the request served', async () => {
    const res = await exchange(port, {
      send: 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nConnection: close\r\n\r\n',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
  });

  it('JSON nested deeper than JSON_MAX_DEPTH is 400 validation_failed naming the limit, on every body route', async () => {
    const max = t.app.config.JSON_MAX_DEPTH;
    const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const deepArrays = JSON.stringify({ metadata: 'x' }).replace(
      '"x"',
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
    );
    for (const [method, url, key] of [
      ['POST', '/v1/validations', t.keys.checkout],
      ['POST', '/v1/campaigns', t.keys.marketing],
      ['POST', '/v1/api-keys', t.keys.admin],
    ] as const) {
      for (const body of [deepObject, deepArrays]) {
        const res = await t.call(method, url, {
          key,
          headers: { 'content-type': 'application/json' },
          body,
        });
        expect(res.statusCode, res.body).toBe(400);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.json()).toMatchObject({
          code: 'validation_failed',
          detail: `body must not nest objects and arrays deeper than ${max} levels`,
          errors: [{ field: 'body' }],
        });
      }
    }
  });

  it('JSON nested exactly JSON_MAX_DEPTH deep is parsed (and judged by the schema)', async () => {
    const max = t.app.config.JSON_MAX_DEPTH;
    // Brackets inside strings do not count toward the depth.
    const atLimit = `{"name":"${'['.repeat(100)}","x":${'['.repeat(max - 1)}${']'.repeat(max - 1)}}`;
    const res = await t.call('POST', '/v1/api-keys', {
      headers: { 'content-type': 'application/json' },
      body: atLimit,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).not.toMatch(/nest/);
  });

  it('a NUL deep inside the nesting bound is found without recursion and refused with 400', async () => {
    const max = t.app.config.JSON_MAX_DEPTH;
    const body = JSON.stringify({ metadata: 'x' }).replace(
      '"x"',
      `${'{"k":'.repeat(max - 2)}"\\u0000"${'}'.repeat(max - 2)}`,
    );
    const res = await t.call('POST', '/v1/campaigns', {
      key: t.keys.marketing,
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatch(/U\+0000/);
  });
});

describe.each(backends)('slow clients are cut off ($name)', (backend) => {
  let t: TestApp;
  let port: number;
  const HEADERS_MS = 400;
  const REQUEST_MS = 800;
  const KEEP_ALIVE_MS = 300;
  // Well past each limit, for a loaded machine; a connection held open for good fails by far.
  const SLACK_MS = 3000;

  beforeAll(async () => {
    t = await startTestApp(backend, {
      env: {
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
        HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
        HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
      },
    });
    await t.server.listen({ port: 0, host: '127.0.0.1' });
    port = (t.server.server.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('a body that never arrives is closed with 408 request_timeout after HTTP_REQUEST_TIMEOUT_MS', async () => {
    const res = await exchange(port, {
      send: `${JSON_HEAD}Authorization: Bearer ${t.keys.checkout}\r\nContent-Length: 500\r\n\r\n{"code":`,
    });
    expectProblem(res, 'request_timeout');
    expect(res.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(res.closedAfterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
  });

  it('a body dripped a byte at a time is closed with 408 at the same limit', async () => {
    const res = await exchange(port, {
      send: `${JSON_HEAD}Authorization: Bearer ${t.keys.checkout}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      drip: { parts: ['1\r\n \r\n'], everyMs: 50 },
    });
    expectProblem(res, 'request_timeout');
    expect(res.closedAfterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
  });

  it('headers dripped a line at a time (slowloris) are closed with 408 after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const res = await exchange(port, {
      send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n',
      drip: { parts: ['X-Drip: a\r\n'], everyMs: 50 },
    });
    expectProblem(res, 'request_timeout');
    expect(res.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(res.closedAfterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('a connection that sends nothing is closed with 408 after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const res = await exchange(port, {});
    expectProblem(res, 'request_timeout');
    expect(res.closedAfterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it('an idle keep-alive connection is closed after HTTP_KEEP_ALIVE_TIMEOUT_MS, its answer intact', async () => {
    const res = await exchange(port, { send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expect(res.closedAfterMs).toBeLessThan(KEEP_ALIVE_MS + SLACK_MS);
  });
});
