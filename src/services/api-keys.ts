/**
 * API keys (secrets and hashing in security/api-key-secrets.ts). Verified keys are cached briefly, so
 * a revocation takes effect on every node within `cacheTtlMs`.
 */
import { newId } from '../lib/ids.js';
import { hashApiKey, looksLikeApiKey, newApiKeySecret } from '../security/api-key-secrets.js';
import {
  type ApiKeyRecord,
  findActiveKeyByHash,
  insertApiKey,
  insertFirstKey,
  listApiKeys,
  revokeApiKey,
} from '../store/api-keys.js';
import type { ServiceContext } from './context.js';

export const SCOPES = ['admin', 'marketing', 'checkout', 'fraud', 'finance'] as const;
export type Scope = (typeof SCOPES)[number];

/** `admin` may do everything; every other scope grants exactly itself. */
export function hasScope(granted: readonly string[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}

export class ApiKeyService {
  private readonly cache = new Map<string, { key: ApiKeyRecord | null; expires: number }>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly cacheTtlMs = 5_000,
  ) {}

  async create(name: string, scopes: Scope[]): Promise<{ key: ApiKeyRecord; secret: string }> {
    const secret = newApiKeySecret();
    const key = await insertApiKey(
      this.ctx.db,
      {
        id: newId('apiKey'),
        name,
        keyHash: hashApiKey(secret),
        keyHint: secret.slice(-4),
        scopes: [...new Set(scopes)],
      },
      this.ctx.clock.now(),
    );
    return { key, secret };
  }

  /** On an empty database, create the first admin key and return its secret (to be printed once). */
  async bootstrapAdminKey(): Promise<string | null> {
    const secret = newApiKeySecret();
    const created = await insertFirstKey(
      this.ctx.db,
      {
        id: newId('apiKey'),
        name: 'bootstrap admin',
        keyHash: hashApiKey(secret),
        keyHint: secret.slice(-4),
        scopes: ['admin'],
      },
      this.ctx.clock.now(),
    );
    return created ? secret : null;
  }

  async verify(secret: string): Promise<ApiKeyRecord | null> {
    if (!looksLikeApiKey(secret)) return null;
    const hash = hashApiKey(secret);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expires > now) return cached.key;
    const key = await findActiveKeyByHash(this.ctx.db, hash);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { key, expires: now + this.cacheTtlMs });
    return key;
  }

  list(): Promise<ApiKeyRecord[]> {
    return listApiKeys(this.ctx.db);
  }

  async revoke(id: string): Promise<boolean> {
    const revoked = await revokeApiKey(this.ctx.db, id, this.ctx.clock.now());
    this.cache.clear();
    return revoked;
  }
}
