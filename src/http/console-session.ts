/**
 * The console's session cookie and the checks a cookie-authenticated request passes. A cookie rides
 * along on any request the browser makes, also one another site's page starts; so a request that
 * changes something must also come from our own origin (Origin, Sec-Fetch-Site) and carry the
 * session's CSRF token in a header, which only our own pages can read.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';

const NAME = 'pg_session';
/** With Secure, the `__Host-` prefix makes the browser refuse the cookie from a sibling subdomain or over plain HTTP. */
const SECURE_NAME = `__Host-${NAME}`;

export const CSRF_HEADER = 'x-csrf-token';
export const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function cookieIsSecure(config: Config, request: FastifyRequest): boolean {
  if (config.CONSOLE_COOKIE_SECURE === 'always') return true;
  if (config.CONSOLE_COOKIE_SECURE === 'never') return false;
  return request.protocol === 'https';
}

/** The session id the request's cookie carries (the last one if the header repeats it), if any. */
export function readSessionCookie(config: Config, request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  const name = cookieIsSecure(config, request) ? SECURE_NAME : NAME;
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) found = part.slice(eq + 1).trim();
  }
  return found;
}

export function setSessionCookie(
  config: Config,
  request: FastifyRequest,
  reply: FastifyReply,
  sessionId: string,
  maxAgeSeconds: number,
): void {
  const secure = cookieIsSecure(config, request);
  reply.header(
    'set-cookie',
    `${secure ? SECURE_NAME : NAME}=${sessionId}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`,
  );
}

export function clearSessionCookie(config: Config, request: FastifyRequest, reply: FastifyReply): void {
  const secure = cookieIsSecure(config, request);
  reply.header(
    'set-cookie',
    `${secure ? SECURE_NAME : NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`,
  );
}

/**
 * Whether the browser says the request came from a page of our own origin. A browser sends
 * Sec-Fetch-Site (current ones) or Origin (on every cross-origin request and every POST); a request
 * with neither is no browser's cross-site request, and still needs the CSRF token.
 */
export function fromOwnOrigin(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  // Through URL, so that `http://h` and `http://h:80` compare equal (a browser omits a default port).
  try {
    return new URL(origin).origin === new URL(`${request.protocol}://${request.host}`).origin;
  } catch {
    return false;
  }
}
