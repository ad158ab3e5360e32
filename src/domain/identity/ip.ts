/** Client addresses: the key a rate limit counts under (IPv4 as is, IPv6 its /64). */

/** Strict dotted quad: four decimal octets, no leading zeros (`010` is octal to some parsers). */
function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    octets.push(value);
  }
  return octets;
}

type Ipv6Groups = [number, number, number, number, number, number, number, number];

/** Eight 16-bit groups, from full, `::`-compressed or IPv4-suffixed text (RFC 4291 section 2.2). */
function parseIPv6(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (part: string, allowIPv4Tail: boolean): number[] | null => {
    if (part === '') return [];
    const pieces = part.split(':');
    const groups: number[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string;
      if (allowIPv4Tail && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (v4 === null) return null;
        const [a, b, c, d] = v4 as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(piece)) return null;
        groups.push(Number.parseInt(piece, 16));
      }
    }
    return groups;
  };
  if (halves.length === 1) {
    const groups = parseGroups(text, true);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  const head = parseGroups(halves[0] as string, false);
  const tail = parseGroups(halves[1] as string, true);
  // `::` stands for at least one zero group.
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function prefix64(groups: number[]): string {
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/**
 * The key a rate limit counts under: an IPv4 address as `a.b.c.d`; an IPv6 address as its /64, since
 * one subscriber is handed a whole /64 and can rotate through it for free, written as four lower-case
 * groups without leading zeros (`2001:db8:0:1::/64`). An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`,
 * what a dual-stack socket reports for an IPv4 client) is that IPv4 address, or every IPv4 client
 * would share one /64. A zone id (`%eth0`) is dropped; a /64 key is accepted as input and returned
 * unchanged. No ports, brackets or other prefix lengths: null for anything else.
 */
export function ipRateKey(raw: string): string | null {
  const text = raw.trim();
  if (text.length === 0 || text.length > 100) return null;
  if (!text.includes(':')) {
    const v4 = parseIPv4(text);
    return v4 === null ? null : v4.join('.');
  }
  const isPrefix = text.endsWith('/64');
  let address = isPrefix ? text.slice(0, -3) : text;
  const zone = address.indexOf('%');
  if (zone !== -1) {
    if (isPrefix || !/^[\w.~-]+$/.test(address.slice(zone + 1))) return null;
    address = address.slice(0, zone);
  }
  const groups = parseIPv6(address);
  if (groups === null) return null;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as Ipv6Groups;
  if (!isPrefix && g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    return [g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff].join('.');
  }
  return prefix64(groups);
}

/** A client address as a number, for testing it against ranges; held in memory, never stored. */
export interface IpAddress {
  version: 4 | 6;
  value: bigint;
}

/** A network: the address with every host bit clear, and how many leading bits name it. */
export interface IpRange {
  version: 4 | 6;
  value: bigint;
  prefix: number;
  /** Canonical text (`203.0.113.0/24`, `2001:db8::/32`): equal networks give equal text. */
  text: string;
}

const WIDTH = { 4: 32, 6: 128 } as const;

function fromParts(parts: number[], bitsEach: number): bigint {
  return parts.reduce((acc, p) => (acc << BigInt(bitsEach)) | BigInt(p), 0n);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as `::`. */
function ipv6Text(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function ipText(version: 4 | 6, value: bigint): string {
  if (version === 6) return ipv6Text(value);
  return [24, 16, 8, 0].map((s) => Number((value >> BigInt(s)) & 0xffn)).join('.');
}

/**
 * A client address (IPv4, or IPv6 with an optional zone id) as a number; an IPv4-mapped IPv6 address
 * is its IPv4 address, as for the rate-limit key, so an IPv4 range matches a dual-stack socket's view.
 * A /64 key (which `ipRateKey` accepts as input) is its first address: list ranges are never narrower
 * than /64, so that address lies in a range exactly when the whole /64 does, and sending the /64
 * instead of an address cannot slip past a range.
 */
export function parseIpAddress(raw: string): IpAddress | null {
  let text = raw.trim();
  if (text.length === 0 || text.length > 100) return null;
  if (!text.includes(':')) {
    const v4 = parseIPv4(text);
    return v4 === null ? null : { version: 4, value: fromParts(v4, 8) };
  }
  const isPrefix = text.endsWith('/64');
  if (isPrefix) text = text.slice(0, -3);
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const groups = parseIPv6(text);
  if (groups === null) return null;
  const value = fromParts(groups, 16);
  if (isPrefix) return { version: 6, value: (value >> 64n) << 64n };
  if (value >> 32n === 0xffffn) return { version: 4, value: value & 0xffffffffn };
  return { version: 6, value };
}

/** The text of an address, for a database comparison (`network >>= $1::inet`); never stored. */
export function ipAddressText(address: IpAddress): string {
  return ipText(address.version, address.value);
}

export type CidrResult = { range: IpRange } | { error: string };

/**
 * A network in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`). Host bits set (`203.0.113.7/24`) is
 * refused rather than rounded down: such a value is most often a typo, and rounding would silently
 * list a different set of addresses than the one meant.
 */
export function parseCidr(raw: string): CidrResult {
  const text = raw.trim();
  const slash = text.indexOf('/');
  const lengthText = slash === -1 ? '' : text.slice(slash + 1);
  if (slash === -1 || !/^(?:0|[1-9]\d{0,2})$/.test(lengthText)) {
    return { error: 'is not a CIDR range (address/prefix length)' };
  }
  const address = text.slice(0, slash);
  let version: 4 | 6;
  let value: bigint;
  if (address.includes(':')) {
    const groups = parseIPv6(address);
    if (groups === null) return { error: 'is not a CIDR range: the network is not an IPv6 address' };
    version = 6;
    value = fromParts(groups, 16);
  } else {
    const octets = parseIPv4(address);
    if (octets === null) return { error: 'is not a CIDR range: the network is not an IPv4 address' };
    version = 4;
    value = fromParts(octets, 8);
  }
  const width = WIDTH[version];
  const prefix = Number(lengthText);
  if (prefix > width) return { error: `has a prefix length above ${width}` };
  const hostBits = BigInt(width - prefix);
  if ((value & ((1n << hostBits) - 1n)) !== 0n) {
    const network = ipText(version, (value >> hostBits) << hostBits);
    return { error: `has host bits set; the network is ${network}/${prefix}` };
  }
  return { range: { version, value, prefix, text: `${ipText(version, value)}/${prefix}` } };
}

/** Whether the address lies inside the range (an IPv4 address is never inside an IPv6 range). */
export function inRange(address: IpAddress, range: IpRange): boolean {
  if (address.version !== range.version) return false;
  const hostBits = BigInt(WIDTH[range.version] - range.prefix);
  return address.value >> hostBits === range.value >> hostBits;
}
