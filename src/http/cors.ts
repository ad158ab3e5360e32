/**
 * CORS for the storefront routes only — those a customer token may call (`config.customer`) — and
 * only for the origins CORS_ORIGINS names. A shop's page on its own origin can then call them with a
 * customer token; no other route is ever readable cross-origin, and no other origin gets any header.
 * Tokens travel in Authorization, never in cookies, so credentials are not allowed.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** How long a browser may reuse a preflight (Chromium caps it at two hours). */
export const CORS_MAX_AGE_SECONDS = 7200;
const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'];
const EXPOSED_HEADERS = ['X-Request-Id', 'Retry-After', 'Idempotent-Replayed'];

interface StorefrontRoute {
  method: string;
  path: RegExp;
}

/** A route's URL pattern (`/v1/customers/:id/points`) as a regular expression over request paths. */
function pathPattern(url: string): RegExp {
  const segments = url.split('/').map((segment) => {
    if (segment.startsWith(':')) return '[^/]+';
    if (/[*()]/.test(segment)) throw new Error(`CORS cannot match the route pattern ${url}`);
    return segment.replace(/[.+?^${}|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${segments.join('/')}$`);
}

/**
 * Registers CORS for the storefront routes when `origins` names any; must run before the routes are
 * registered, as it learns them as they are added.
 */
export async function registerStorefrontCors(server: FastifyInstance, origins: string[]): Promise<void> {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  const storefront: StorefrontRoute[] = [];
  server.addHook('onRoute', (route) => {
    if (!route.config?.customer) return;
    for (const method of [route.method].flat()) storefront.push({ method, path: pathPattern(route.url) });
  });

  /** The storefront methods served at this path; a preflight names the path, not a route. */
  const methodsAt = (url: string): string[] => {
    const path = url.split('?')[0] ?? '';
    return [...new Set(storefront.filter((route) => route.path.test(path)).map((route) => route.method))];
  };

  const optionsFor = (request: FastifyRequest): FastifyCorsOptions => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !allowed.has(origin)) return { origin: false };
    let methods: string[];
    if (request.method === 'OPTIONS') {
      methods = methodsAt(request.url);
      const asked = request.headers['access-control-request-method'];
      if (typeof asked !== 'string' || !methods.includes(asked)) return { origin: false };
    } else {
      if (!request.routeOptions.config.customer) return { origin: false };
      methods = [request.method];
    }
    return {
      origin,
      methods,
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      credentials: false,
      maxAge: CORS_MAX_AGE_SECONDS,
      // A malformed preflight gets no CORS headers and falls through to the 404 problem, never a text/plain 400.
      strictPreflight: false,
    };
  };

  await server.register(cors, {
    hook: 'onRequest',
    delegator: (request, callback) => callback(null, optionsFor(request)),
  });
}
