/**
 * The server secret keys HMACs (customer tokens, step-up challenges, hashed identifiers and list entries). It comes from
 * PROMOGUARD_SECRET when the operator sets it; otherwise one is drawn from the CSPRNG on the first
 * start and kept in the database, so every node shares it and no default secret exists anywhere.
 * Each use derives its own subkey, so one use's outputs say nothing about another's.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Database } from '../store/schema.js';

export async function loadServerSecret(
  db: Kysely<Database>,
  configured: string | undefined,
): Promise<Buffer> {
  const secret = configured !== undefined ? Buffer.from(configured, 'utf8') : await storedSecret(db);
  await checkFingerprint(db, secret);
  return secret;
}

async function storedSecret(db: Kysely<Database>): Promise<Buffer> {
  await sql`INSERT INTO server_secrets (name, value) VALUES ('hmac', ${randomBytes(32).toString('base64url')})
    ON CONFLICT (name) DO NOTHING`.execute(db);
  const { rows } = await sql<{ value: string }>`SELECT value FROM server_secrets WHERE name = 'hmac'`.execute(
    db,
  );
  const value = rows[0]?.value;
  if (!value) throw new Error('server secret missing after insert');
  return Buffer.from(value, 'base64url');
}

/**
 * Identifier hashes, list entries and the identity graph are all keyed by the secret: a node started
 * with another secret would silently stop matching them. The first start records a fingerprint of
 * the secret (never the secret itself); a later start with a different one refuses to run.
 */
async function checkFingerprint(db: Kysely<Database>, secret: Buffer): Promise<void> {
  const fingerprint = deriveKey(secret, 'fingerprint').toString('base64url');
  await sql`INSERT INTO server_secrets (name, value) VALUES ('fingerprint', ${fingerprint})
    ON CONFLICT (name) DO NOTHING`.execute(db);
  const { rows } = await sql<{ value: string }>`
    SELECT value FROM server_secrets WHERE name = 'fingerprint'`.execute(db);
  if (rows[0]?.value !== fingerprint) {
    throw new Error(
      'PROMOGUARD_SECRET differs from the secret this database was first used with; identifier hashes, ' +
        'lists and linked persons depend on it. Start with the original secret.',
    );
  }
}

export function deriveKey(secret: Buffer, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`promoguard:${purpose}`).digest();
}
