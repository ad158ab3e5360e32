/**
 * `promoguard reconcile` on a database of each backend: exit code 0 and a summary table when clean; 1
 * naming the planted mismatch to the cent (and writing it to --out as CSV); 2 when it cannot run.
 * Run in-process through buildCli (stdout and stderr captured, the exit code read from
 * process.exitCode) and, when dist/ is built, as the real binary.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { buildCli } from '../../src/cli.js';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import type { Database } from '../../src/store/schema.js';
import { campaignBody, checkoutBody, silentLogger } from '../support/app.js';
import { backends } from '../support/backends.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST_BUILT = existsSync(path.join(ROOT, 'dist/cli.js'));

type Env = Record<string, string>;

function capture(stream: NodeJS.WriteStream, into: string[]) {
  return vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
    into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
    return true;
  }) as typeof stream.write);
}

/** `promoguard <args>` in-process; the exit code it leaves for the process. */
async function runCli(env: Env, args: string[]) {
  const program = buildCli(() =>
    loadConfig({ LOG_LEVEL: 'silent', DATABASE_POOL_SIZE: '4', APPROVALS: 'off', ...env }),
  );
  const exitOverride = (command: Command) => {
    command.exitOverride();
    for (const sub of command.commands) exitOverride(sub);
  };
  exitOverride(program);
  const out: string[] = [];
  const err: string[] = [];
  const spies = [capture(process.stdout, out), capture(process.stderr, err)];
  const before = process.exitCode;
  let exitCode: number | undefined;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    for (const spy of spies) spy.mockRestore();
    exitCode = process.exitCode === undefined ? undefined : Number(process.exitCode);
    process.exitCode = before;
  }
  return { stdout: out.join(''), stderr: err.join(''), exitCode: exitCode ?? 0 };
}

/** The binary itself, as cron or a CI step would run it. */
function runBinary(env: Env, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/promoguard.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

async function withApp<T>(env: Env, fn: (app: App) => Promise<T>): Promise<T> {
  const app = await createApp({
    config: loadConfig({
      LOG_LEVEL: 'silent',
      DATABASE_POOL_SIZE: '4',
      RISK_DEFAULT_PACK: 'off',
      APPROVALS: 'off',
      ...env,
    }),
    logger: silentLogger,
    relay: false,
  });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

describe.each(backends.map((b) => [b.name, b] as const))('promoguard reconcile on %s', (_name, backend) => {
  let env: Env;
  let campaignId = '';
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    if (backend.name === 'pglite') {
      const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-reconcile-'));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      env = { PROMOGUARD_DATA_DIR: dir };
    } else {
      const holder = await backend.open<Database>();
      cleanup.push(() => holder.close());
      env = { DATABASE_URL: holder.databaseUrl ?? '' };
    }
    // Ordinary traffic through the API: a campaign, a code, two redemptions, one rolled back.
    campaignId = await withApp(env, async (app) => {
      const server = await buildServer(app, { logger: false });
      const { secret } = await app.apiKeys.create('admin', ['admin'], 'test');
      const call = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
        const res = await server.inject({
          method: 'POST',
          url,
          payload: body as object,
          headers: { authorization: `Bearer ${secret}`, ...headers },
        });
        if (res.statusCode >= 300) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
        return res.json();
      };
      const campaign = await call('/v1/campaigns', campaignBody());
      await call(`/v1/campaigns/${campaign.id}/codes`, { code: 'CLI-RECON' });
      await call('/v1/redemptions', checkoutBody('CLI-RECON'), { 'idempotency-key': 'k1' });
      const second = await call('/v1/redemptions', checkoutBody('CLI-RECON', { customer: { id: 'cus_2' } }), {
        'idempotency-key': 'k2',
      });
      await call(`/v1/redemptions/${second.id}/rollback`, {});
      await server.close();
      return campaign.id as string;
    });
  });

  afterAll(async () => {
    for (const dispose of cleanup.reverse()) await dispose();
  });

  it('exits 0 on a clean database and prints the summary table', async () => {
    const run = await runCli(env, ['reconcile']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^reconciliation rcn_[0-9A-Z]{26}: ok — 1 campaigns, 0 points accounts\n/);
    expect(run.stdout).toMatch(/\n {2}campaign_spent +minor units +0 +0\n/);
    expect(run.stdout).toContain('  mismatched rows: 0\n');
    expect(run.stderr).toContain('reconciling [');
  });

  it('exits 1 naming a planted one-cent mismatch, and writes every mismatch to --out', async () => {
    await withApp(env, (app) =>
      sql`UPDATE campaigns SET spent_minor = spent_minor + 1 WHERE id = ${campaignId}`.execute(app.db),
    );
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-reconcile-out-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const out = path.join(dir, 'mismatches.csv');
    const run = await runCli(env, ['reconcile', '--out', out, '--no-progress']);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/^reconciliation rcn_[0-9A-Z]{26}: mismatch/);
    expect(run.stdout).toMatch(/\n {2}campaign_spent +minor units +1 +1 USD\n/);
    expect(run.stdout).toContain(
      `  campaign_spent  campaign_id=${campaignId}  expected 500, actual 501, difference +1 USD minor units\n`,
    );
    expect(run.stderr).not.toContain('reconciling [');
    expect(await readFile(out, 'utf8')).toBe(
      `kind,entity,currency,expected,actual,difference\ncampaign_spent,campaign_id=${campaignId},USD,500,501,1\n`,
    );
  });

  it('exits 2 when the reconciliation cannot run', async () => {
    const run = await runCli({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, ['reconcile']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/^promoguard: reconcile failed: /m);
    expect(run.stderr).not.toContain('nobody@');
    expect(run.stdout).toBe('');
  });

  // The exit codes do not depend on the store: the binary is run against one of them.
  it.runIf(DIST_BUILT && backend === backends.at(-1))(
    'the built binary exits with the same codes',
    async () => {
      const mismatch = await runBinary(env, ['reconcile', '--no-progress']);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stdout).toContain(`campaign_spent  campaign_id=${campaignId}`);
      const failure = await runBinary({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, ['reconcile']);
      expect(failure.code).toBe(2);
    },
  );
});
