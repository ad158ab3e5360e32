/**
 * The built console at /console: files as they are, client routes get index.html, every page with a
 * strict Content-Security-Policy and no framing; an unbuilt console is a clear 404 problem.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import type { Database } from '../../src/store/schema.js';
import { silentLogger } from '../support/app.js';
import { backends } from '../support/backends.js';

const INDEX =
  '<!doctype html><title>Promoguard</title><script type="module" src="/console/assets/app-abc123.js"></script>';

describe('the console at /console', () => {
  let dir: string;
  let empty: string;
  let built: FastifyInstance;
  let unbuilt: FastifyInstance;
  const closers: (() => Promise<void>)[] = [];

  async function serverFor(consoleDir: string, env: Record<string, string> = {}) {
    const app = await createApp({
      config: loadConfig({ LOG_LEVEL: 'silent', ...env }),
      logger: silentLogger,
      database: await (backends[0] as (typeof backends)[number]).open<Database>(),
      relay: false,
    });
    const server = await buildServer(app, { logger: false, consoleDir });
    closers.push(async () => {
      await server.close();
      await app.close();
    });
    return server;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'promoguard-console-'));
    empty = await mkdtemp(path.join(tmpdir(), 'promoguard-console-empty-'));
    await mkdir(path.join(dir, 'assets'));
    await writeFile(path.join(dir, 'index.html'), INDEX);
    await writeFile(path.join(dir, 'assets/app-abc123.js'), 'console.log(1)');
    await writeFile(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await writeFile(path.join(dir, '.secret'), 'no');
    await writeFile(path.join(dir, 'wallet.html'), '<!doctype html><title>Your coupons</title>');
    built = await serverFor(dir);
    unbuilt = await serverFor(empty);
  }, 180_000);
  afterAll(async () => {
    for (const close of closers) await close();
    await rm(dir, { recursive: true, force: true });
    await rm(empty, { recursive: true, force: true });
  }, 60_000);

  it('serves index.html for the root and for client routes, uncached, with a strict CSP and no framing', async () => {
    for (const url of ['/console/', '/console/campaigns', '/console/reviews/dec_01ABC/graph']) {
      const res = await built.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.body).toBe(INDEX);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['cache-control']).toBe('no-cache');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('lets the shops of CORS_ORIGINS, and no one else, frame the customer wallet page', async () => {
    const shop = await serverFor(dir, { CORS_ORIGINS: 'https://shop.example' });
    const res = await shop.inject({ method: 'GET', url: '/console/wallet.html' });
    expect(res.statusCode).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("frame-ancestors 'self' https://shop.example");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBeUndefined();
    const page = await shop.inject({ method: 'GET', url: '/console/campaigns' });
    expect(String(page.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    const plain = await built.inject({ method: 'GET', url: '/console/wallet.html' });
    expect(String(plain.headers['content-security-policy'])).toMatch(/frame-ancestors 'self'$/);
  });

  it('serves hashed assets for good and other files uncached', async () => {
    const asset = await built.inject({ method: 'GET', url: '/console/assets/app-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.body).toBe('console.log(1)');
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const icon = await built.inject({ method: 'GET', url: '/console/favicon.svg' });
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('answers a missing file, a dotfile or a path outside the folder with a 404 problem', async () => {
    for (const url of [
      '/console/assets/missing.js',
      '/console/.secret',
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/assets/..%2f..%2fpackage.json',
    ]) {
      const res = await built.inject({ method: 'GET', url });
      expect([404, 400], url).toContain(res.statusCode);
      expect(res.headers['content-type'], url).toMatch(/^application\/problem\+json/);
      expect(res.body).not.toContain('"name": "promoguard"');
    }
  });

  it('says plainly when the console is not built', async () => {
    const res = await unbuilt.inject({ method: 'GET', url: '/console/campaigns' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'console_not_built' });
    expect(res.json().title).toMatch(/npm run build/);
  });
});
