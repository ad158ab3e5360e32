/**
 * The console, a single-page app built into a folder (dist/console by default), served at /console.
 * A path naming a file serves it; any other path without a file extension is a client route and gets
 * index.html; without a built index.html every page is a 404 problem saying so.
 *
 * Its pages run with a strict Content-Security-Policy — scripts and styles only from our own origin,
 * never inline — so that an injected `<script>` in data the console shows cannot run, and they may not
 * be framed anywhere (clickjacking an operator into a kill switch).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { App } from '../app.js';
import { corsOrigins } from '../config.js';
import { AppError } from '../errors.js';

/** dist/console of the package: this file sits in src/http or dist/http, two levels below the root. */
const DEFAULT_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The customer wallet page is made to be framed by the shops CORS_ORIGINS names (and by nothing
 * else); it holds no staff session, only the customer token its frame was given.
 */
export const WALLET_PAGE = 'wallet.html';

export function walletCsp(shops: string[]): string {
  return CONSOLE_CSP.replace("frame-ancestors 'none'", `frame-ancestors ${["'self'", ...shops].join(' ')}`);
}

/** Vite names every built asset by its content hash: a changed file is a new URL, so it may be kept for good. */
const HASHED_ASSETS = /^assets\//;

export function consoleDirectory(app: App, given?: string): string {
  return path.resolve(given ?? app.config.CONSOLE_DIR ?? DEFAULT_DIR);
}

export const consoleStatic =
  (app: App, given?: string): FastifyPluginAsync =>
  async (server) => {
    const root = consoleDirectory(app, given);
    const built = existsSync(root) && statSync(root).isDirectory();
    const walletPolicy = walletCsp(corsOrigins(app.config.CORS_ORIGINS));
    await server.register(
      async (scope) => {
        if (built) await scope.register(fastifyStatic, { root, serve: false });
        scope.addHook('onSend', async (request, reply) => {
          if (request.url.split('?')[0] === `/console/${WALLET_PAGE}`) {
            reply.header('content-security-policy', walletPolicy);
          } else {
            reply.header('content-security-policy', CONSOLE_CSP);
            reply.header('x-frame-options', 'DENY');
          }
          reply.header('x-content-type-options', 'nosniff');
          reply.header('referrer-policy', 'same-origin');
          reply.header('cross-origin-opener-policy', 'same-origin');
        });

        const sendIndex = (reply: FastifyReply) => {
          if (!built || !existsSync(path.join(root, 'index.html'))) throw new AppError('console_not_built');
          reply.header('cache-control', 'no-cache');
          return reply.type('text/html; charset=utf-8').sendFile('index.html', { cacheControl: false });
        };

        const schema = { hide: true };
        scope.get('/', { schema }, async (_request, reply) => sendIndex(reply));
        scope.get<{ Params: { '*': string } }>('/*', { schema }, async (request, reply) => {
          const rest = request.params['*'];
          if (rest === '' || rest === 'index.html') return sendIndex(reply);
          const segments = rest.split('/');
          // Dot segments (`..`, `.env`) never name a console file; send refuses traversal as well.
          if (segments.some((s) => s === '' || s.startsWith('.') || s.includes('\\'))) {
            throw new AppError('not_found');
          }
          const file = path.join(root, ...segments);
          if (built && file.startsWith(root + path.sep) && existsSync(file) && statSync(file).isFile()) {
            reply.header(
              'cache-control',
              HASHED_ASSETS.test(rest) ? 'public, max-age=31536000, immutable' : 'no-cache',
            );
            return reply.sendFile(rest, { cacheControl: false });
          }
          // A path with an extension asked for a file that is not there; any other is a client route.
          if (/\.[A-Za-z0-9]+$/.test(segments[segments.length - 1] as string))
            throw new AppError('not_found');
          return sendIndex(reply);
        });
      },
      { prefix: '/console' },
    );
  };
