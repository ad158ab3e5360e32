/**
 * The server secret keys HMACs (customer tokens, step-up challenges, hashed identifiers and list
 * entries). It comes from PROMOGUARD_SECRET when the operator sets it; otherwise one is drawn from the
 * CSPRNG on the first start and kept in the database, so every node shares it and no default secret
 * exists anywhere. Each use derives its own subkey, so one use's outputs say nothing about another's.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** Where named secrets are kept: the first value written under a name wins, for every node. */
export interface SecretStore {
  putIfAbsent(name: string, value: string): Promise<void>;
  get(name: string): Promise<string | null>;
}

export async function loadServerSecret(store: SecretStore, configured: string | undefined): Promise<Buffer> {
  const secret = configured !== undefined ? Buffer.from(configured, 'utf8') : await storedSecret(store);
  await checkFingerprint(store, secret);
  return secret;
}

async function storedSecret(store: SecretStore): Promise<Buffer> {
  await store.putIfAbsent('hmac', randomBytes(32).toString('base64url'));
  const value = await store.get('hmac');
  if (!value) throw new Error('server secret missing after insert');
  return Buffer.from(value, 'base64url');
}

/**
 * Identifier hashes, list entries and the identity graph are all keyed by the secret: a node started
 * with another secret would silently stop matching them. The first start records a fingerprint of
 * the secret (never the secret itself); a later start with a different one refuses to run.
 */
async function checkFingerprint(store: SecretStore, secret: Buffer): Promise<void> {
  const fingerprint = deriveKey(secret, 'fingerprint').toString('base64url');
  await store.putIfAbsent('fingerprint', fingerprint);
  if ((await store.get('fingerprint')) !== fingerprint) {
    throw new Error(
      'PROMOGUARD_SECRET differs from the secret this database was first used with; identifier hashes, ' +
        'lists and linked persons depend on it. Start with the original secret.',
    );
  }
}

export function deriveKey(secret: Buffer, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`promoguard:${purpose}`).digest();
}
