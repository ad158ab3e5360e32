/**
 * Webhook signing secrets. Unlike an API key, a signing secret cannot be kept as a hash: every node
 * needs it in clear to sign. It is kept encrypted (AES-256-GCM) under a key derived from the server
 * secret, which every node shares and which never sits next to the data in clear when the operator
 * sets PROMOGUARD_SECRET. The authentication tag means a tampered or foreign value fails loudly.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deriveKey } from './server-secret.js';

const PREFIX = 'whsec_';
const VERSION = 'v1';

/** A new secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64. */
export function newWebhookSecret(): string {
  return `${PREFIX}${randomBytes(32).toString('base64')}`;
}

export class WebhookSecretBox {
  private readonly key: Buffer;

  constructor(serverSecret: Buffer) {
    this.key = deriveKey(serverSecret, 'webhook-signing-secrets');
  }

  seal(secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64url'));
    return `${VERSION}.${parts.join('.')}`;
  }

  open(sealed: string): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || ciphertext === undefined) {
      throw new Error('unreadable webhook secret');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}
