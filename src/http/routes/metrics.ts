/**
 * GET /metrics in the Prometheus text format, on the API port or on a port of its own (METRICS_PORT).
 * With METRICS_TOKEN set it needs `Authorization: Bearer <token>`; without one it answers only a direct
 * loopback connection: a request that came through a proxy (X-Forwarded-For) could be anyone's.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { App } from '../../app.js';
import { AppError, ERROR_CODES } from '../../errors.js';
import { newId } from '../../lib/ids.js';
import { problemDocument } from '../problem.js';
import type { Routes } from '../shared.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;
const digest = (text: string) => createHash('sha256').update(text).digest();

/** Why a scrape is refused, or null when it may read the metrics. */
function refusal(app: App, request: IncomingMessage): 'unauthorized' | 'forbidden' | null {
  const token = app.config.METRICS_TOKEN;
  if (token !== undefined) {
    const match = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '');
    // Digests of equal length: the comparison's time says nothing about the token.
    return match?.[1] && timingSafeEqual(digest(match[1]), digest(token)) ? null : 'unauthorized';
  }
  const direct = request.headers['x-forwarded-for'] === undefined && request.headers.forwarded === undefined;
  return direct && LOOPBACK.test(request.socket.remoteAddress ?? '') ? null : 'forbidden';
}

const FORBIDDEN_DETAIL = 'set METRICS_TOKEN to scrape /metrics from anywhere but this host';

export const metricsRoutes =
  (app: App): Routes =>
  async (server) => {
    // With a port of its own, the API port does not serve the metrics at all.
    if (app.config.METRICS_PORT !== undefined) return;
    server.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      const refused = refusal(app, request.raw);
      if (refused === 'unauthorized') {
        reply.header('www-authenticate', 'Bearer');
        throw new AppError('unauthorized', 'GET /metrics needs the METRICS_TOKEN bearer token');
      }
      if (refused === 'forbidden') throw new AppError('forbidden', FORBIDDEN_DETAIL);
      const { contentType, body } = await app.metrics.scrape();
      return reply.type(contentType).send(body);
    });
  };

/** The METRICS_PORT listener: /metrics and nothing else, every other answer a problem document. */
export async function listenForMetrics(app: App): Promise<Server | null> {
  const port = app.config.METRICS_PORT;
  if (port === undefined) return null;
  const server = createServer((request, response) => {
    const send = (code: 'not_found' | 'unauthorized' | 'forbidden' | 'internal_error', detail?: string) => {
      const problem = problemDocument(code, newId('request'), detail);
      response.writeHead(ERROR_CODES[code].status, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify(problem));
    };
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') return send('not_found');
    const refused = refusal(app, request);
    if (refused === 'forbidden') return send('forbidden', FORBIDDEN_DETAIL);
    if (refused) return send(refused);
    app.metrics.scrape().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType });
        response.end(body);
      },
      () => send('internal_error'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, app.config.METRICS_HOST, () => resolve());
  });
  return server;
}
