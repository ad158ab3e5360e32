/**
 * Console passwords: scrypt (memory-hard: each guess costs 128 × N × r bytes of memory as well as
 * time), a random salt per password, kept as a PHC string `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` so
 * the parameters travel with the hash and can be raised without invalidating old ones.
 *
 * Hashing holds that much memory per call, so calls run at most `concurrency` at a time and a bounded
 * queue waits behind them: a flood of sign-ins is refused, never allowed to exhaust the process.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParameters {
  /** log2 of N, the CPU/memory cost. */
  ln: number;
  r: number;
  p: number;
}

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export class PasswordQueueFull extends Error {
  override name = 'PasswordQueueFull';
}

function derive(password: string, salt: Buffer, params: ScryptParameters): Promise<Buffer> {
  const N = 2 ** params.ln;
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

const b64 = (buffer: Buffer) => buffer.toString('base64').replace(/=+$/, '');

export class PasswordHasher {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private dummy: Promise<string> | null = null;

  constructor(
    readonly params: ScryptParameters,
    private readonly limits: { concurrency: number; queue: number } = { concurrency: 2, queue: 64 },
  ) {}

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrency) {
      if (this.waiting.length >= this.limits.queue) throw new PasswordQueueFull();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` never dips below the true count.
      if (next) next();
      else this.running -= 1;
    }
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const key = await this.slot(() => derive(password, salt, this.params));
    const { ln, r, p } = this.params;
    return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
  }

  /**
   * Whether `password` matches `stored`, and whether `stored` was made with weaker parameters than
   * today's (the caller then re-hashes it while it has the password in hand). A missing `stored` is
   * checked against a throw-away hash of today's parameters, so an unknown user costs what a known one
   * costs and the answer's timing says nothing about which it was.
   */
  async verify(password: string, stored: string | null): Promise<{ ok: boolean; outdated: boolean }> {
    if (stored === null) {
      this.dummy ??= this.hash(randomBytes(16).toString('hex'));
      await this.check(password, await this.dummy);
      return { ok: false, outdated: false };
    }
    const ok = await this.check(password, stored);
    const parsed = PHC.exec(stored);
    const outdated =
      parsed !== null &&
      (Number(parsed[1]) < this.params.ln ||
        Number(parsed[2]) < this.params.r ||
        Number(parsed[3]) < this.params.p);
    return { ok, outdated };
  }

  private async check(password: string, stored: string): Promise<boolean> {
    const parsed = PHC.exec(stored);
    if (!parsed) return false;
    const params = { ln: Number(parsed[1]), r: Number(parsed[2]), p: Number(parsed[3]) };
    const salt = Buffer.from(parsed[4] as string, 'base64');
    const expected = Buffer.from(parsed[5] as string, 'base64');
    const key = await this.slot(() => derive(password, salt, params));
    return key.length === expected.length && timingSafeEqual(key, expected);
  }
}

export interface PasswordRules {
  minLength: number;
}

/** Longest password taken: scrypt reads all of it, and nobody types more. */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Why a new password is refused, or null when it is acceptable: long enough (counted in characters
 * as a person sees them), not one repeated character, not the email address.
 */
export function weakPasswordReason(password: string, email: string, rules: PasswordRules): string | null {
  const length = [...password.normalize('NFC')].length;
  if (length < rules.minLength) return `the password must be at least ${rules.minLength} characters long`;
  if (length > MAX_PASSWORD_LENGTH)
    return `the password must be at most ${MAX_PASSWORD_LENGTH} characters long`;
  if (new Set(password).size <= 2) return 'the password must not be one or two characters repeated';
  const local = email.toLowerCase().split('@')[0] ?? '';
  if (local.length >= 4 && password.toLowerCase().includes(local))
    return 'the password must not contain the name of the email address';
  return null;
}
