/**
 * `simulate --embedded`: the real app and HTTP server in this process, on a fresh PGlite in a temporary
 * folder (deleted afterwards), with the in-memory attempt limits, listening on a free loopback port, an
 * admin key made for the run and two-person approval off. Everything else (rate limits, lockouts, …) comes from the given config,
 * i.e. the server's defaults unless the environment sets them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApp } from '../app.js';
import type { Config } from '../config.js';
import { buildServer } from '../http/server.js';

export interface EmbeddedServer {
  url: string;
  apiKey: string;
  dataDir: string;
  close(): Promise<void>;
}

export async function startEmbeddedServer(base: Config): Promise<EmbeddedServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'promoguard-simulate-'));
  const config: Config = Object.freeze({
    ...base,
    // Never the configured database or Redis: the simulation writes thousands of rows of made-up traffic.
    DATABASE_URL: undefined,
    REDIS_URL: undefined,
    PROMOGUARD_DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: 0,
    // One admin key drives the whole run, and its made-up campaigns are uncapped: a second approver
    // would only stand in the way.
    APPROVALS: 'off',
  });
  const app = await createApp({
    config,
    logger: { error: (obj, msg) => process.stderr.write(`embedded server: ${msg} ${JSON.stringify(obj)}\n`) },
  });
  try {
    const server = await buildServer(app, { logger: false });
    const apiKey = (await app.apiKeys.create('promoguard simulate (embedded)', ['admin'], 'promoguard'))
      .secret;
    const url = await server.listen({ port: 0, host: '127.0.0.1' });
    return {
      url,
      apiKey,
      dataDir,
      async close() {
        await server.close();
        await app.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
