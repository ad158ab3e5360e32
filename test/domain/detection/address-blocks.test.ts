import { describe, expect, it } from 'vitest';
import { addressBlockKeys, addressBlocks } from '../../../src/domain/detection/address-blocks.js';
import { ipRateKey } from '../../../src/domain/identity/index.js';

describe('addressBlocks', () => {
  it.each([
    ['192.0.2.17', '192.0.2.0/24'],
    ['10.0.0.0', '10.0.0.0/24'],
    ['255.255.255.255', '255.255.255.0/24'],
    [' 198.51.100.7 ', '198.51.100.0/24'],
    // IPv4-mapped IPv6, as a dual-stack socket reports an IPv4 client: the IPv4 /24.
    ['::ffff:203.0.113.9', '203.0.113.0/24'],
    ['::FFFF:cb00:7109', '203.0.113.0/24'],
    ['0:0:0:0:0:ffff:203.0.113.9', '203.0.113.0/24'],
  ])('maps IPv4 %s to %s', (address, block24) => {
    expect(addressBlocks(address)).toEqual({ family: 'ipv4', block24 });
  });

  it.each([
    ['2001:db8:0:1::/64', '2001:db8:0::/48', '2001:db8::/32'],
    ['2001:0DB8:00aa:0001:0000:0000:0000:0001', '2001:db8:aa::/48', '2001:db8::/32'],
    ['2001:db8:aa:1::1', '2001:db8:aa::/48', '2001:db8::/32'],
    ['2001:db8::1', '2001:db8:0::/48', '2001:db8::/32'],
    ['fe80::1%eth0', 'fe80:0:0::/48', 'fe80:0::/32'],
    ['::1', '0:0:0::/48', '0:0::/32'],
    ['2a00:1450:4001:82a::200e', '2a00:1450:4001::/48', '2a00:1450::/32'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0::/48', '64:ff9b::/32'],
  ])('maps IPv6 %s to %s and %s', (address, block48, block32) => {
    expect(addressBlocks(address)).toEqual({ family: 'ipv6', block48, block32 });
  });

  it('gives one /48 for every /64 inside it and one /32 for every /48 inside it', () => {
    const a = addressBlocks('2001:db8:aa:1::1');
    const b = addressBlocks('2001:db8:aa:ffff:1234::9');
    const c = addressBlocks('2001:db8:bb::1');
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(c?.family === 'ipv6' && a?.family === 'ipv6' && c.block32 === a.block32).toBe(true);
  });

  it('accepts what ipRateKey produces', () => {
    for (const raw of ['192.0.2.1', '::ffff:192.0.2.1', '2001:db8:0:1:2:3:4:5']) {
      const key = ipRateKey(raw) as string;
      expect(addressBlocks(key)).toEqual(addressBlocks(raw));
    }
  });

  it.each([
    '',
    '   ',
    'not an ip',
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.4/24',
    '2001:db8::/48',
    '2001:db8:::1',
    '2001:db8::1::2',
    '12345::1',
    '1:2:3:4:5:6:7:8:9',
    '[2001:db8::1]',
    '[2001:db8::1]:443',
    'gggg::1',
  ])('is null for %j', (address) => {
    expect(addressBlocks(address)).toBeNull();
    expect(addressBlockKeys(address)).toEqual([]);
  });

  it('lists the keys to count an address under', () => {
    expect(addressBlockKeys('192.0.2.17')).toEqual(['192.0.2.0/24']);
    expect(addressBlockKeys('2001:db8:aa:1::1')).toEqual(['2001:db8:aa::/48', '2001:db8::/32']);
  });
});
