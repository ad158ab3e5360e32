/**
 * The configuration as an operator meets it: a bad value names its variable without echoing a secret,
 * TRUST_PROXY never trusts every hop, and settings that only make sense together are checked together.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOCS, ConfigError, loadConfig, trustProxySetting } from '../src/config.js';

describe('configuration', () => {
  it('never echoes a secret or a URL in its error', () => {
    const attempt = () =>
      loadConfig({ PROMOGUARD_SECRET: 'hunter2-short-secret', DATABASE_URL: 'mysql://u:pw@h/db' });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toContain('PROMOGUARD_SECRET');
      expect(message).toContain('DATABASE_URL');
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('pw@');
    }
  });

  it('trusts only the given proxies, never every hop', () => {
    expect(trustProxySetting('false')).toBe(false);
    const hops = trustProxySetting('1') as (address: string, hop: number) => boolean;
    expect([hops('10.0.0.1', 0), hops('6.6.6.6', 1)]).toEqual([true, false]);
    expect(trustProxySetting('10.0.0.0/8, 192.168.1.1')).toEqual(['10.0.0.0/8', '192.168.1.1']);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(ConfigError);
  });

  it('names both variables when the first lock is longer than the longest', () => {
    expect(() => loadConfig({ LOCKOUT_BASE_SECONDS: '600', LOCKOUT_MAX_SECONDS: '60' })).toThrow(
      /LOCKOUT_BASE_SECONDS=600: must not exceed LOCKOUT_MAX_SECONDS=60/,
    );
  });

  it('names both variables when the headers may take longer than the whole request', () => {
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS=20000: must not exceed HTTP_REQUEST_TIMEOUT_MS=10000/,
    );
  });

  it('refuses a client query timeout that would fire before the server cancels the statement', () => {
    expect(() =>
      loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '5000', DATABASE_QUERY_TIMEOUT_MS: '5000' }),
    ).toThrow(/DATABASE_QUERY_TIMEOUT_MS=5000: must exceed DATABASE_STATEMENT_TIMEOUT_MS=5000/);
    expect(loadConfig({}).DATABASE_QUERY_TIMEOUT_MS).toBeGreaterThan(
      loadConfig({}).DATABASE_STATEMENT_TIMEOUT_MS,
    );
  });

  it("lists every variable in the README's configuration table", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Layout'));
    const missing = CONFIG_DOCS.map((d) => d.name).filter((name) => !table.includes(`| \`${name}\` |`));
    expect(missing).toEqual([]);
  });
});
