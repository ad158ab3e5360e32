/**
 * The SSRF guard: every non-public address class is refused in each way it can be written (IPv4,
 * IPv6, IPv4 inside IPv6), host names are judged by every address they resolve to, and only the
 * operator's allow-list lets a private target through.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import {
  checkTarget,
  classifyAddress,
  parseAllowList,
  type Resolver,
} from '../../src/security/ssrf-guard.js';

const none = parseAllowList('');
const fixed =
  (answers: Record<string, string[]>): Resolver =>
  async (host) =>
    (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('address classes', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link_local'],
    ['fe80::1', 'link_local'],
    ['fd00::1', 'unique_local'],
    ['fc12:3456::1', 'unique_local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.254', 'cgnat'],
    ['255.255.255.255', 'reserved'],
    ['2001:db8::1', 'reserved'],
    // IPv4 inside IPv6: mapped (dotted and hex), compatible, NAT64 and 6to4.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link_local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::10.0.0.1', 'private'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['2002:7f00:1::', 'loopback'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => {
      expect(classifyAddress(address)).toBeNull();
    },
  );
});

describe('checkTarget', () => {
  it('refuses a private address written as an IP literal, whatever its form', async () => {
    for (const url of [
      'http://127.0.0.1/',
      'http://[::1]:8080/',
      'http://[::ffff:127.0.0.1]/',
      'http://169.254.169.254/latest/meta-data',
      'http://0.0.0.0/',
      'http://[fd00::1]/',
      'http://100.64.0.1/',
      'http://224.0.0.1/',
      'http://[fe80::1]/',
    ]) {
      const check = await checkTarget(url, none, fixed({}));
      expect(check.ok, url).toBe(false);
    }
  });

  it('refuses a host name when any of its addresses is private', async () => {
    const resolve = fixed({
      'mixed.example': ['93.184.216.34', '10.0.0.5'],
      'ok.example': ['93.184.216.34'],
    });
    const mixed = await checkTarget('https://mixed.example/hook', none, resolve);
    expect(mixed).toMatchObject({ ok: false, addressClass: 'private' });
    const ok = await checkTarget('https://ok.example/hook', none, resolve);
    expect(ok).toMatchObject({ ok: true, address: { address: '93.184.216.34', family: 4 } });
  });

  it('refuses schemes other than http and https, credentials in the URL, and names that do not resolve', async () => {
    expect((await checkTarget('ftp://93.184.216.34/', none, fixed({}))).ok).toBe(false);
    expect((await checkTarget('file:///etc/passwd', none, fixed({}))).ok).toBe(false);
    expect((await checkTarget('https://u:p@93.184.216.34/', none, fixed({}))).ok).toBe(false);
    expect(await checkTarget('https://nowhere.example/', none, fixed({}))).toMatchObject({
      ok: false,
      reason: 'the host does not resolve',
    });
  });

  it('lets the allow-list admit a host name, an address or a range', async () => {
    const resolve = fixed({ 'internal.corp': ['10.0.0.7'] });
    const byName = parseAllowList('internal.corp');
    expect((await checkTarget('http://internal.corp/', byName, resolve)).ok).toBe(true);
    expect((await checkTarget('http://10.0.0.7/', byName, resolve)).ok).toBe(false);
    const byRange = parseAllowList('10.0.0.0/24, ::1');
    expect((await checkTarget('http://internal.corp/', byRange, resolve)).ok).toBe(true);
    expect((await checkTarget('http://[::1]/', byRange, resolve)).ok).toBe(true);
    expect((await checkTarget('http://10.0.1.7/', byRange, resolve)).ok).toBe(false);
    // The mapped form of an allowed IPv4 address is the same address.
    expect((await checkTarget('http://[::ffff:10.0.0.9]/', byRange, resolve)).ok).toBe(true);
  });

  it('a bad WEBHOOKS_ALLOW_HOSTS entry stops the start with the variable named', () => {
    expect(() => loadConfig({ WEBHOOKS_ALLOW_HOSTS: '10.0.0.0/99' })).toThrow(/WEBHOOKS_ALLOW_HOSTS/);
    expect(() => loadConfig({ WEBHOOKS_ALLOW_HOSTS: 'http://x/' })).toThrow(/WEBHOOKS_ALLOW_HOSTS/);
    expect(
      loadConfig({ WEBHOOKS_ALLOW_HOSTS: '127.0.0.1, hooks.internal, fd00::/8' }).WEBHOOKS_ALLOW_HOSTS,
    ).toBe('127.0.0.1, hooks.internal, fd00::/8');
  });
});
