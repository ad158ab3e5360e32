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
import { insertAudit } from '../store/audit.js';
import type { Actor, ServiceContext } from './context.js';

export const SCOPES = ['admin', 'marketing', 'checkout', 'fraud', 'finance', 'webhooks'] as const;
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

  /** Audited with its name and scopes (never its secret or hash). */
  async create(name: string, scopes: Scope[], actor: Actor): Promise<{ key: ApiKeyRecord; secret: string }> {
    const secret = newApiKeySecret();
    const now = this.ctx.clock.now();
    const key = await this.ctx.db.transaction().execute(async (trx) => {
      const created = await insertApiKey(
        trx,
        {
          id: newId('apiKey'),
          name,
          keyHash: hashApiKey(secret),
          keyHint: secret.slice(-4),
          scopes: [...new Set(scopes)],
        },
        now,
      );
      await insertAudit(
        trx,
        {
          actor,
          action: 'api_key.created',
          targetId: created.id,
          reason: null,
          details: { name: created.name, scopes: created.scopes, hint: created.keyHint },
        },
        now,
      );
      return created;
    });
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

  /** True when this call revoked it; a repeat changes nothing and writes no audit entry. */
  async revoke(id: string, actor: Actor, reason: string | null): Promise<boolean> {
    const now = this.ctx.clock.now();
    const revoked = await this.ctx.db.transaction().execute(async (trx) => {
      if (!(await revokeApiKey(trx, id, now))) return false;
      await insertAudit(trx, { actor, action: 'api_key.revoked', targetId: id, reason, details: {} }, now);
      return true;
    });
    this.cache.clear();
    return revoked;
  }
}
