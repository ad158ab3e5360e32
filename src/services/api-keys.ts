/**
 * API keys. A key is 256 random bits shown once; only its SHA-256 is stored (a slow hash adds nothing
 * against a key with that much entropy, and keeps the check per request cheap). Verified keys are
 * cached briefly, so a revocation takes effect on every node within `cacheTtlMs`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { newId } from '../lib/ids.js';
import {
  type ApiKeyRecord,
  countApiKeys,
  findActiveKeyByHash,
  insertApiKey,
  listApiKeys,
  revokeApiKey,
} from '../store/api-keys.js';
import type { ServiceContext } from './context.js';

export const SCOPES = ['admin', 'marketing', 'checkout', 'fraud'] as const;
export type Scope = (typeof SCOPES)[number];

const KEY_PREFIX = 'pgk_';

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

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
    const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
    const key = await insertApiKey(
      this.ctx.db,
      {
        id: newId('apiKey'),
        name,
        keyHash: hashKey(secret),
        keyHint: secret.slice(-4),
        scopes: [...new Set(scopes)],
      },
      this.ctx.clock.now(),
    );
    return { key, secret };
  }

  /**
   * On an empty database, create the first admin key and return its secret (to be printed once).
   * The advisory lock makes two nodes starting together create one key, not two.
   */
  async bootstrapAdminKey(): Promise<string | null> {
    return this.ctx.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(7301)`.execute(trx);
      if ((await countApiKeys(trx)) > 0) return null;
      const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
      await insertApiKey(
        trx,
        {
          id: newId('apiKey'),
          name: 'bootstrap admin',
          keyHash: hashKey(secret),
          keyHint: secret.slice(-4),
          scopes: ['admin'],
        },
        this.ctx.clock.now(),
      );
      return secret;
    });
  }

  async verify(secret: string): Promise<ApiKeyRecord | null> {
    if (!secret.startsWith(KEY_PREFIX) || secret.length > 200) return null;
    const hash = hashKey(secret);
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
