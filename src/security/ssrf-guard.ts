/**
 * The guard in front of every outgoing webhook request. A webhook URL is chosen by whoever holds a
 * key, so without it Promoguard would be a proxy into its own network: the cloud metadata service
 * (169.254.169.254), an admin port on loopback, a database on a private subnet. A target is refused
 * when any address its host resolves to is private, loopback, link-local, unique-local, multicast,
 * carrier-grade NAT, unspecified or reserved (IPv4, IPv6, and IPv4 embedded in IPv6), unless the
 * operator's allow-list names the host or a range holding the address. The sender then connects to
 * the very address checked here, so a second DNS answer (rebinding) cannot redirect it.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export type AddressClass =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'unique_local'
  | 'multicast'
  | 'cgnat'
  | 'reserved';

interface Range {
  /** Network address: 4 bytes (IPv4) or 16 (IPv6). */
  bytes: Uint8Array;
  prefix: number;
}

interface ClassRange extends Range {
  kind: AddressClass;
}

/** `a.b.c.d` or an IPv6 text as bytes; null when it is not an IP literal. */
export function addressBytes(text: string): Uint8Array | null {
  const version = isIP(text);
  if (version === 4) return Uint8Array.from(text.split('.').map(Number));
  if (version !== 6) return null;
  let head = text.split('%')[0] as string;
  // A trailing dotted IPv4 (::ffff:1.2.3.4) becomes two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(head);
  if (dotted) {
    const b = (dotted[1] as string).split('.').map(Number) as [number, number, number, number];
    head = `${head.slice(0, -(dotted[1] as string).length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [left, right] = head.includes('::') ? (head.split('::') as [string, string]) : [head, null];
  const groupsOf = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const l = groupsOf(left);
  const r = right === null ? [] : groupsOf(right);
  const groups = right === null ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

function parseRange(text: string): Range | null {
  const [address, prefixText] = text.split('/') as [string, string | undefined];
  const bytes = addressBytes(address);
  if (!bytes) return null;
  const max = bytes.length * 8;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (prefix < 0 || prefix > max) return null;
  return { bytes, prefix };
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit += 8) {
    const take = Math.min(8, range.prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    const i = bit / 8;
    if (((bytes[i] as number) & mask) !== ((range.bytes[i] as number) & mask)) return false;
  }
  return true;
}

const CLASS_RANGES: ClassRange[] = (
  [
    ['0.0.0.0/8', 'unspecified'],
    ['10.0.0.0/8', 'private'],
    ['100.64.0.0/10', 'cgnat'],
    ['127.0.0.0/8', 'loopback'],
    ['169.254.0.0/16', 'link_local'],
    ['172.16.0.0/12', 'private'],
    ['192.0.0.0/24', 'reserved'],
    ['192.0.2.0/24', 'reserved'],
    ['192.168.0.0/16', 'private'],
    ['198.18.0.0/15', 'reserved'],
    ['198.51.100.0/24', 'reserved'],
    ['203.0.113.0/24', 'reserved'],
    ['224.0.0.0/4', 'multicast'],
    ['240.0.0.0/4', 'reserved'],
    ['::/128', 'unspecified'],
    ['::1/128', 'loopback'],
    ['100::/64', 'reserved'],
    ['2001:db8::/32', 'reserved'],
    ['fc00::/7', 'unique_local'],
    ['fe80::/10', 'link_local'],
    ['fec0::/10', 'reserved'],
    ['ff00::/8', 'multicast'],
  ] as const
).map(([cidr, kind]) => ({ ...(parseRange(cidr) as Range), kind }));

/**
 * The IPv4 address an IPv6 one carries and a host would reach: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16). `::ffff:127.0.0.1` is
 * loopback however it is written.
 */
function embeddedIPv4(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length !== 16) return null;
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12);
  if (zeros(0, 12) && !zeros(12, 16) && !(zeros(12, 15) && bytes[15] === 1)) return bytes.slice(12);
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12))
    return bytes.slice(12);
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return bytes.slice(2, 6);
  return null;
}

/** The class of a non-public address; null for a public one (or text that is not an address). */
export function classifyAddress(address: string): AddressClass | null {
  const bytes = addressBytes(address);
  if (!bytes) return null;
  const v4 = embeddedIPv4(bytes);
  for (const candidate of v4 ? [v4, bytes] : [bytes]) {
    const hit = CLASS_RANGES.find((r) => inRange(candidate, r));
    if (hit) return hit.kind;
  }
  return null;
}

export interface AllowList {
  hosts: ReadonlySet<string>;
  ranges: readonly Range[];
}

const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

/** WEBHOOKS_ALLOW_HOSTS: host names, addresses and CIDRs, comma-separated. Throws on a bad entry. */
export function parseAllowList(text: string): AllowList {
  const hosts = new Set<string>();
  const ranges: Range[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const range = parseRange(entry.replace(/^\[|\](?=\/|$)/g, ''));
    if (range) ranges.push(range);
    else if (!entry.includes('/') && HOST_NAME.test(entry)) hosts.add(entry.replace(/\.$/, ''));
    else throw new Error(`${JSON.stringify(entry)} is neither a host name, an address nor a CIDR`);
  }
  return { hosts, ranges };
}

function allowedAddress(allow: AllowList, address: string): boolean {
  const bytes = addressBytes(address);
  if (!bytes) return false;
  const v4 = embeddedIPv4(bytes);
  return allow.ranges.some((r) => inRange(bytes, r) || (v4 !== null && inRange(v4, r)));
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

export type TargetCheck =
  | { ok: true; url: URL; address: ResolvedAddress }
  | { ok: false; reason: string; addressClass?: AddressClass };

/**
 * Whether `url` may be called, and the address to connect to. Every address of the host is judged,
 * not only the first: a name that answers one public and one private address could be steered to
 * the private one by the next lookup.
 */
export async function checkTarget(
  url: string,
  allow: AllowList,
  resolve: Resolver = systemResolver,
  timeoutMs = 5_000,
): Promise<TargetCheck> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    return { ok: false, reason: 'only http and https URLs' };
  }
  // Credentials in the URL would be kept and shown in clear; the signature authenticates instead.
  if (parsed.username || parsed.password) return { ok: false, reason: 'credentials in the URL' };
  const host = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  let addresses: ResolvedAddress[];
  const literal = isIP(host);
  if (literal) addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  else {
    let timer: NodeJS.Timeout | undefined;
    try {
      addresses = await Promise.race([
        resolve(host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('DNS lookup timed out')), timeoutMs);
        }),
      ]);
    } catch {
      return { ok: false, reason: 'the host does not resolve' };
    } finally {
      clearTimeout(timer);
    }
  }
  if (addresses.length === 0) return { ok: false, reason: 'the host does not resolve' };
  const hostAllowed = allow.hosts.has(host.replace(/\.$/, ''));
  for (const a of addresses) {
    if (hostAllowed || allowedAddress(allow, a.address)) continue;
    const addressClass = classifyAddress(a.address);
    if (addressClass) {
      return {
        ok: false,
        reason: `the host resolves to a ${addressClass.replace('_', '-')} address`,
        addressClass,
      };
    }
  }
  return { ok: true, url: parsed, address: addresses[0] as ResolvedAddress };
}
