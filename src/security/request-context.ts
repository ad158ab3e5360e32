/**
 * The request context of a validation or redemption — who is asking, from where, with what — reduced
 * to what the defenses need: keyed hashes of normalized identifiers (never the raw values), the
 * rate-limit key of the client address, and the account's age. Only hashes and non-personal facts are
 * stored with a redemption.
 */
import {
  addressPlaceKey,
  emailDomain,
  type IdentifierType,
  type IpAddress,
  normalizeAddress,
  normalizeEmail,
  type PostalAddress,
  parseIpAddress,
} from '../domain/identity/index.js';
import { AppError } from '../errors.js';
import { confusableFold } from './confusables.js';
import { isDisposableDomain } from './disposable-email.js';
import type { IdentifierHasher } from './identifier-hasher.js';

export interface RequestContextInput {
  ip?: string | undefined;
  deviceId?: string | undefined;
  userAgent?: string | undefined;
  email?: string | undefined;
  phone?: string | undefined;
  shippingAddress?: PostalAddress | undefined;
  paymentFingerprint?: string | undefined;
  accountCreatedAt?: Date | undefined;
}

export interface HashedIdentifier {
  type: IdentifierType;
  hash: string;
}

export interface ResolvedContext {
  /** Identifiers that link customers into one person (the client address never does: NATs, offices). */
  linking: HashedIdentifier[];
  /** Every identifier, for block/allow lists and velocity features. */
  all: HashedIdentifier[];
  /** The rate-limit key of the client address: the IPv4 address, or the IPv6 /64 (hashed). */
  ipKey: string | null;
  /** The client address as a number, for the lists' ranges; in memory only, never stored or logged. */
  ipAddress: IpAddress | null;
  deviceKey: string | null;
  /**
   * The building of the shipping address (addressPlaceKey, hashed): units and word order left out. It
   * links beside the exact address under its own prefix (`place:`), so features can tell the two apart.
   */
  placeKey: string | null;
  /** The email's domain is a throwaway one (null without an email). */
  emailDisposable: boolean | null;
  accountCreatedAt: Date | null;
  /** What is kept with the redemption. */
  stored: Record<string, unknown>;
}

const FIELD: Record<Exclude<IdentifierType, 'address' | 'ip'>, keyof RequestContextInput> = {
  email: 'email',
  phone: 'phone',
  device: 'deviceId',
  payment: 'paymentFingerprint',
};

const FIELD_NAMES: Record<IdentifierType, string> = {
  email: 'email',
  phone: 'phone',
  device: 'device_id',
  payment: 'payment_fingerprint',
  address: 'shipping_address',
  ip: 'ip',
};

function invalid(type: IdentifierType): AppError {
  const field = `body/context/${FIELD_NAMES[type]}`;
  return new AppError('validation_failed', `${field} is not a valid ${type}`, {
    errors: [{ field, message: `is not a valid ${type}` }],
  });
}

export function resolveContext(
  hasher: IdentifierHasher,
  input: RequestContextInput | undefined,
): ResolvedContext {
  const linking: HashedIdentifier[] = [];
  const all: HashedIdentifier[] = [];
  const stored: Record<string, unknown> = {};
  if (!input) {
    return {
      linking,
      all,
      ipKey: null,
      ipAddress: null,
      deviceKey: null,
      placeKey: null,
      emailDisposable: null,
      accountCreatedAt: null,
      stored,
    };
  }

  for (const [type, field] of Object.entries(FIELD) as [
    Exclude<IdentifierType, 'address' | 'ip'>,
    keyof RequestContextInput,
  ][]) {
    const raw = input[field];
    if (typeof raw !== 'string') continue;
    const hash = hasher.fromRaw(type, raw);
    if (hash === null) throw invalid(type);
    const id = { type, hash };
    linking.push(id);
    all.push(id);
    stored[FIELD_NAMES[type]] = id.hash;
  }
  let placeKey: string | null = null;
  if (input.shippingAddress) {
    const normalized = normalizeAddress(input.shippingAddress, confusableFold);
    if (normalized === null) throw invalid('address');
    const id = { type: 'address' as const, hash: hasher.hash('address', normalized) };
    linking.push(id);
    all.push(id);
    stored.shipping_address = id.hash;
    const place = addressPlaceKey(input.shippingAddress, confusableFold);
    if (place !== null) placeKey = hasher.hash('address', place);
  }
  let emailDisposable: boolean | null = null;
  if (typeof input.email === 'string') {
    // Already known to normalize (its hash was taken above).
    const email = normalizeEmail(input.email, confusableFold);
    if (email !== null) emailDisposable = isDisposableDomain(emailDomain(email));
  }
  let ipKey: string | null = null;
  let ipAddress: IpAddress | null = null;
  if (input.ip !== undefined) {
    // The rate-limit key of an address: IPv4 as is, IPv6 its /64 (normalizeIdentifier's rule for ip).
    ipKey = hasher.fromRaw('ip', input.ip);
    if (ipKey === null) throw invalid('ip');
    all.push({ type: 'ip', hash: ipKey });
    ipAddress = parseIpAddress(input.ip);
    stored.ip = ipKey;
  }
  if (input.userAgent !== undefined) stored.user_agent = input.userAgent.slice(0, 300);
  if (input.accountCreatedAt) stored.account_created_at = input.accountCreatedAt.toISOString();
  const device = linking.find((i) => i.type === 'device');
  return {
    linking,
    all,
    ipKey,
    ipAddress,
    deviceKey: device ? device.hash : null,
    placeKey,
    emailDisposable,
    accountCreatedAt: input.accountCreatedAt ?? null,
    stored,
  };
}

/**
 * The identity-graph keys of a redemption: the customer itself, each linking identifier, and the
 * building of the shipping address (`place:`).
 */
export function identityKeys(customerId: string, context: ResolvedContext): string[] {
  const keys = [`customer:${customerId}`, ...context.linking.map((i) => `${i.type}:${i.hash}`)];
  if (context.placeKey !== null) keys.push(`place:${context.placeKey}`);
  return keys;
}
