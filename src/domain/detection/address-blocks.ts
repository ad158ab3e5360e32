/**
 * Aggregation keys for client addresses: the blocks a single operator tends to hold, so that a farm
 * rotating through addresses still lands on one key. An IPv4 address maps to its /24; an IPv6 address
 * to its /48 (a typical site allocation) and its /32 (a typical provider allocation).
 *
 * Input is what identity/ip.ts's `ipRateKey` accepts (and produces): a dotted quad, any IPv6 text
 * (compressed, with an IPv4 tail, with a zone id) or a `/64` key such as `2001:db8:0:1::/64`. Parsing
 * is delegated to it, so a rate-limit key and a block key can never disagree on what an address is; an
 * IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is its IPv4 address. Output follows ipRateKey's spelling:
 * lower-case groups without leading zeros, then `::/len` (`2001:db8:1::/48`), or `a.b.c.0/24`.
 * Pure; null for anything that is not an address.
 */

import { ipRateKey } from '../identity/ip.js';

export type AddressBlocks =
  | { family: 'ipv4'; block24: string }
  | { family: 'ipv6'; block48: string; block32: string };

/** The blocks an address belongs to, or null when the text is not an address ipRateKey accepts. */
export function addressBlocks(address: string): AddressBlocks | null {
  const key = ipRateKey(address);
  if (key === null) return null;
  if (!key.endsWith('::/64')) {
    const octets = key.split('.');
    return { family: 'ipv4', block24: `${octets[0]}.${octets[1]}.${octets[2]}.0/24` };
  }
  // ipRateKey writes a /64 as its four leading groups, already canonical.
  const groups = key.slice(0, -'::/64'.length).split(':');
  return {
    family: 'ipv6',
    block48: `${groups.slice(0, 3).join(':')}::/48`,
    block32: `${groups.slice(0, 2).join(':')}::/32`,
  };
}

/** The block keys to count an address under: `[/24]` for IPv4, `[/48, /32]` for IPv6; [] if invalid. */
export function addressBlockKeys(address: string): string[] {
  const blocks = addressBlocks(address);
  if (blocks === null) return [];
  return blocks.family === 'ipv4' ? [blocks.block24] : [blocks.block48, blocks.block32];
}
