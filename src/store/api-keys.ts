import type { Kysely } from 'kysely';
import { insertAudit } from './audit.js';
import { lockUntilCommit } from './locks.js';
import type { Database } from './schema.js';

export interface ApiKeyRecord {
  id: string;
  name: string;
  keyHint: string;
  scopes: string[];
  createdAt: Date;
  revokedAt: Date | null;
}

function fromRow(r: {
  id: string;
  name: string;
  key_hint: string;
  scopes: string[];
  created_at: Date;
  revoked_at: Date | null;
}): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    keyHint: r.key_hint,
    scopes: r.scopes,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}

const COLUMNS = ['id', 'name', 'key_hint', 'scopes', 'created_at', 'revoked_at'] as const;

export async function insertApiKey(
  db: Kysely<Database>,
  key: { id: string; name: string; keyHash: string; keyHint: string; scopes: string[] },
  now: Date,
): Promise<ApiKeyRecord> {
  const row = await db
    .insertInto('api_keys')
    .values({
      id: key.id,
      name: key.name,
      key_hash: key.keyHash,
      key_hint: key.keyHint,
      scopes: key.scopes,
      created_at: now,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return fromRow(row);
}

export async function findActiveKeyByHash(
  db: Kysely<Database>,
  keyHash: string,
): Promise<ApiKeyRecord | null> {
  const row = await db
    .selectFrom('api_keys')
    .select(COLUMNS)
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeyRecord[]> {
  const rows = await db.selectFrom('api_keys').select(COLUMNS).orderBy('id', 'asc').execute();
  return rows.map(fromRow);
}

export async function revokeApiKey(db: Kysely<Database>, id: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function countApiKeys(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Insert `key` only if the database holds no key yet, under a lock so two nodes starting together on
 * an empty database make one. True when it was inserted.
 */
export async function insertFirstKey(
  db: Kysely<Database>,
  key: { id: string; name: string; keyHash: string; keyHint: string; scopes: string[] },
  now: Date,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await lockUntilCommit(trx, 'bootstrapAdminKey');
    if ((await countApiKeys(trx)) > 0) return false;
    await insertApiKey(trx, key, now);
    await insertAudit(
      trx,
      {
        actor: 'promoguard',
        action: 'api_key.created',
        targetId: key.id,
        reason: 'first start on an empty database',
        details: { name: key.name, scopes: key.scopes, hint: key.keyHint },
      },
      now,
    );
    return true;
  });
}
