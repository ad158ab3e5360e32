/**
 * Identifier hashes, list entries and the identity graph are keyed by the server secret, so a node
 * started with another secret would silently stop matching them: the start is refused instead.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../support/app.js';
import { backends } from '../support/backends.js';

describe('the server secret', () => {
  it('refuses to start on a database first used with another secret', async () => {
    const backend = backends[0];
    if (!backend) throw new Error('no backend');
    const database = await backend.open();
    const config = (secret: string) => loadConfig({ PROMOGUARD_SECRET: secret, LOG_LEVEL: 'silent' });
    const keep = { ...database, close: async () => {} };
    const first = await createApp({
      config: config('a'.repeat(40)),
      logger: silentLogger,
      database: keep as never,
      relay: false,
    });
    await first.close();
    await expect(
      createApp({
        config: config('b'.repeat(40)),
        logger: silentLogger,
        database: keep as never,
        relay: false,
      }),
    ).rejects.toThrow(/differs from the secret/);
    await database.close();
  });
});
