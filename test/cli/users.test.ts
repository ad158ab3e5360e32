/**
 * `promoguard users create`: the first admin comes from the CLI, its password from stdin — never
 * from argv, never echoed in the output.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/promoguard.js');

describe.skipIf(!existsSync(path.join(ROOT, 'dist/cli.js')))('promoguard users create', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'promoguard-users-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const run = (args: string[], input: string) =>
    spawnSync(process.execPath, [BIN, ...args], {
      input,
      encoding: 'utf8',
      env: {
        ...process.env,
        PROMOGUARD_DATA_DIR: dir,
        CONSOLE_PASSWORD_SCRYPT_LOG_N: '14',
        LOG_LEVEL: 'silent',
      },
    });

  it('creates an admin from a password on stdin and never prints the password', () => {
    const res = run(
      ['users', 'create', '--email', 'owner@example.com', '--role', 'admin'],
      'the first admin passphrase\n',
    );
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/created usr_[0-9A-Z]{26} \(owner@example\.com, admin\)/);
    expect(res.stdout + res.stderr).not.toContain('passphrase');
  });

  it('refuses a weak password with the reason and exit code 1', () => {
    const res = run(['users', 'create', '--email', 'second@example.com', '--role', 'admin'], 'short\n');
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/at least 12 characters/);
  });
});
