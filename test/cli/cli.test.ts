/**
 * The `promoguard` command, run in-process through `buildCli` against a real database of each
 * backend (a PGlite folder, or a PostgreSQL database of its own). What a person sees — stdout for a
 * secret or data, stderr for everything else — is captured; what the command did is read back from
 * the database.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { buildCli } from '../../src/cli.js';
import { loadConfig } from '../../src/config.js';
import { CODE_ALPHABET, displayGeneratedCode, hasValidCheckCharacter } from '../../src/domain/codes.js';
import { openDatabase } from '../../src/store/connect.js';
import type { Database } from '../../src/store/schema.js';
import { silentLogger } from '../support/app.js';
import { backends, type TestBackend } from '../support/backends.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST_BUILT = existsSync(path.join(ROOT, 'dist/cli.js'));

type Env = Record<string, string>;

interface CliRun {
  stdout: string;
  stderr: string;
  /** What `parseAsync` rejected with, if anything. */
  error: unknown;
}

function captureWrites(stream: NodeJS.WriteStream, into: string[], onWrite?: (text: string) => void) {
  return vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    into.push(text);
    onWrite?.(text);
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof stream.write);
}

/** Run one command line in-process, as `promoguard <args>` with this environment. */
async function runCli(env: Env, args: string[], onStderr?: (text: string) => void): Promise<CliRun> {
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_POOL_SIZE: '4', ...env });
  const program = buildCli(() => config);
  // Commander would call process.exit on a usage error; make it throw instead, on every subcommand.
  const exitOverride = (command: Command) => {
    command.exitOverride();
    for (const sub of command.commands) exitOverride(sub);
  };
  exitOverride(program);
  const out: string[] = [];
  const err: string[] = [];
  const spies = [captureWrites(process.stdout, out), captureWrites(process.stderr, err, onStderr)];
  let error: unknown;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    error = e;
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return { stdout: out.join(''), stderr: err.join(''), error };
}

/** Run a command that must succeed. */
async function ok(env: Env, args: string[]): Promise<CliRun> {
  const run = await runCli(env, args);
  if (run.error) {
    throw new Error(`promoguard ${args.join(' ')} failed: ${String(run.error)}\nstderr: ${run.stderr}`);
  }
  return run;
}

/** Open the app on the same database the CLI uses (closed again before the CLI runs: PGlite is one process). */
async function withApp<T>(env: Env, fn: (app: App) => Promise<T>): Promise<T> {
  const app = await createApp({
    config: loadConfig({ LOG_LEVEL: 'silent', DATABASE_POOL_SIZE: '4', APPROVALS: 'off', ...env }),
    logger: silentLogger,
    relay: false,
  });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

function campaignInput(name: string) {
  return {
    name,
    currency: 'USD',
    discount: { type: 'fixed_amount' as const, amountMinor: 500 },
    status: 'active' as const,
    startsAt: new Date('2020-01-01T00:00:00Z'),
  };
}

async function countRows(
  db: Kysely<Database>,
  table: 'codes' | 'code_batches' | 'api_keys',
): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Fresh databases the CLI can open by configuration. PGlite: copies of one empty data folder made
 * once (initialising a PGlite folder takes seconds). PostgreSQL: a database of its own, dropped after.
 */
function databases(backend: TestBackend) {
  const disposers: (() => Promise<void>)[] = [];
  let template: Promise<string> | undefined;
  return {
    async fresh(): Promise<Env> {
      if (backend.name === 'pglite') {
        template ??= (async () => {
          const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-cli-template-'));
          disposers.push(() => rm(dir, { recursive: true, force: true }));
          const opened = await openDatabase({ dataDir: dir });
          await opened.close();
          return dir;
        })();
        const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-cli-'));
        disposers.push(() => rm(dir, { recursive: true, force: true }));
        await cp(await template, dir, { recursive: true });
        return { PROMOGUARD_DATA_DIR: dir };
      }
      const holder = await backend.open<Database>();
      // Only the URL is needed; the CLI and the checks open pools of their own.
      disposers.push(() => holder.close());
      if (!holder.databaseUrl) throw new Error('PostgreSQL backend gave no URL');
      return { DATABASE_URL: holder.databaseUrl };
    },
    async disposeAll(): Promise<void> {
      for (const dispose of disposers.splice(0).reverse()) await dispose();
    },
  };
}

/** An exported CSV as one record per code, keyed by the header. */
function readCsv(text: string): Record<string, string>[] {
  return parse(text, { columns: true, skip_empty_lines: true });
}

const GENERATED = new RegExp(`^CLI[${CODE_ALPHABET}]{13}$`);

describe.each(backends.map((b) => [b.name, b] as const))('promoguard CLI on %s', (_name, backend) => {
  const dbs = databases(backend);
  let env: Env;
  // Campaigns the tests below work on, made in one go (every open of a PGlite folder costs time).
  let campaigns: Record<
    'generate' | 'progress' | 'options' | 'bad' | 'source' | 'sameDb' | 'duplicates' | 'exportProgress',
    string
  >;

  beforeAll(async () => {
    env = await dbs.fresh();
    campaigns = await withApp(env, async (app) => {
      const make = async (name: string) =>
        (await app.campaigns.create(campaignInput(name), 'test')).campaign.id;
      const made = {
        generate: await make('generate'),
        progress: await make('progress'),
        options: await make('options'),
        bad: await make('bad options'),
        source: await make('export me'),
        sameDb: await make('same database'),
        duplicates: await make('duplicates'),
        exportProgress: await make('export progress'),
      };
      await app.codes.createCode(made.source, { code: 'RT-PUBLIC' }, 'test');
      await app.codes.createCode(
        made.source,
        { code: 'rt bound 1', customerId: 'cus_9', maxUses: 2 },
        'test',
      );
      // A leaked code, revoked: moving codes to another database must not bring it back to life.
      await app.codes.createCode(made.source, { code: 'RT-REVOKED', maxUses: 1 }, 'test');
      await app.codes.revoke('RT-REVOKED', 'test', 'leaked');
      return made;
    });
    // Opening a fresh PGlite folder creates the database in a child process: slow on a loaded host.
  }, 180_000);
  afterAll(async () => {
    await dbs.disposeAll();
  });

  it('migrate brings an empty database to the latest schema, and running it again changes nothing', async () => {
    const empty = await dbs.fresh();
    const first = await ok(empty, ['migrate']);
    expect(first.stdout).toBe('');
    expect(first.stderr).toBe('database is at the latest migration\n');

    const readSchema = async () => {
      const opened = await openDatabase<Database>({
        databaseUrl: empty.DATABASE_URL,
        dataDir: empty.PROMOGUARD_DATA_DIR,
      });
      try {
        const migrations = await sql<{ name: string }>`
          SELECT name FROM kysely_migration ORDER BY name`.execute(opened.db);
        const tables = await sql<{ table_name: string }>`
          SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'
           ORDER BY table_name`.execute(opened.db);
        return {
          migrations: migrations.rows.map((r) => r.name),
          tables: tables.rows.map((r) => r.table_name),
        };
      } finally {
        await opened.close();
      }
    };
    const schema = await readSchema();
    expect(schema.migrations[0]).toBe('0001-core');
    expect(schema.tables).toEqual(
      expect.arrayContaining(['api_keys', 'campaigns', 'codes', 'code_batches', 'outbox', 'redemptions']),
    );

    const again = await ok(empty, ['migrate']);
    expect(again.stderr).toBe('database is at the latest migration\n');
    expect(await readSchema()).toEqual(schema);
  });

  it('keys create prints exactly the secret on stdout, the secret verifies, and bad options create nothing', async () => {
    const run = await ok(env, ['keys', 'create', '--name', 'x', '--scope', 'checkout']);
    expect(run.stdout).toMatch(/^pgk_[A-Za-z0-9_-]{43}\n$/);
    const secret = run.stdout.trimEnd();
    expect(run.stderr).toMatch(/^created key_[0-9A-Z]{26} \(checkout\); the secret is shown only now:\n$/);
    expect(run.stderr).not.toContain(secret);

    const multi = await ok(env, ['keys', 'create', '--name', 'ops desk', '--scope', 'marketing', 'checkout']);
    const multiSecret = multi.stdout.trimEnd();
    expect(multiSecret).toMatch(/^pgk_/);
    expect(multiSecret).not.toBe(secret);

    // Usage errors: refused by the parser, before the database is opened.
    const badScope = await runCli(env, ['keys', 'create', '--name', 'bad', '--scope', 'root']);
    expect(badScope.error).toMatchObject({ code: 'commander.invalidArgument', exitCode: 1 });
    expect(badScope.stderr).toContain("error: option '--scope <scope...>' argument 'root' is invalid");
    expect(badScope.stderr).toContain('Allowed choices are admin, marketing, checkout');
    expect(badScope.stdout).toBe('');
    const noName = await runCli(env, ['keys', 'create', '--scope', 'checkout']);
    expect(noName.error).toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
    expect(noName.stderr).toContain("error: required option '--name <name>' not specified");
    expect(noName.stdout).toBe('');

    await withApp(env, async (app) => {
      expect(await app.apiKeys.verify(secret)).toMatchObject({
        name: 'x',
        scopes: ['checkout'],
        revokedAt: null,
        keyHint: secret.slice(-4),
      });
      expect((await app.apiKeys.verify(multiSecret))?.scopes.sort()).toEqual(['checkout', 'marketing']);
      const stored = await app.db.selectFrom('api_keys').selectAll().execute();
      expect(stored.map((k) => k.name).sort()).toEqual(['ops desk', 'x']);
      // Only the hash is stored.
      expect(JSON.stringify(stored)).not.toContain(secret.slice(4));
    });
  });

  it('keys list shows every key without its secret; keys revoke revokes one', async () => {
    const created = await ok(env, ['keys', 'create', '--name', 'list me', '--scope', 'admin']);
    const secret = created.stdout.trimEnd();
    const id = /^created (key_[0-9A-Z]{26}) /.exec(created.stderr)?.[1] ?? 'no id';

    const list = await ok(env, ['keys', 'list']);
    expect(list.stdout).not.toContain('pgk_');
    expect(list.stdout).not.toContain(secret.slice(4, -4));
    expect(list.stderr).toBe('');
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines).toContain(`${id}\t…${secret.slice(-4)}\tadmin\tactive\tlist me`);
    for (const line of lines)
      expect(line).toMatch(/^key_[0-9A-Z]{26}\t….{4}\t[a-z,]+\t(active|revoked .+)\t.+$/);

    const revoke = await ok(env, ['keys', 'revoke', id]);
    expect(revoke.stderr).toBe(`revoked ${id}\n`);
    expect(revoke.stdout).toBe('');
    await withApp(env, async (app) => {
      expect(await app.apiKeys.verify(secret)).toBeNull();
      expect(lines).toHaveLength(await countRows(app.db, 'api_keys'));
    });
    const after = await ok(env, ['keys', 'list']);
    const line = after.stdout.split('\n').find((l) => l.startsWith(`${id}\t`));
    expect(line).toMatch(
      new RegExp(`^${id}\\t…${secret.slice(-4)}\\tadmin\\trevoked \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\tlist me$`),
    );
    expect(after.stdout).not.toContain('pgk_');

    const twice = await runCli(env, ['keys', 'revoke', id]);
    expect(String(twice.error)).toContain(`no active key ${id}`);
  });

  it('codes generate makes 20,000 unique codes with a valid check symbol and reports progress', async () => {
    const campaignId = campaigns.generate;
    const run = await ok(env, ['codes', 'generate', campaignId, '--count', '20000', '--prefix', 'CLI']);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('generating [');
    expect(run.stderr).toMatch(/100% \| 20000\/20000/);
    const done = /generated 20000 codes in batch (bat_[0-9A-Z]{26})\n$/.exec(run.stderr);
    expect(done, run.stderr).not.toBeNull();
    const batchId = done?.[1] ?? '';

    await withApp(env, async (app) => {
      const codes = await app.db
        .selectFrom('codes')
        .select(['code', 'normalized', 'batch_id', 'kind', 'max_uses', 'uses', 'status'])
        .where('campaign_id', '=', campaignId)
        .execute();
      expect(codes).toHaveLength(20_000);
      expect(new Set(codes.map((c) => c.normalized)).size).toBe(20_000);
      const pattern = { prefix: 'CLI', randomLength: 12 };
      const bad = codes.filter(
        (c) =>
          !GENERATED.test(c.normalized) ||
          !hasValidCheckCharacter(c.normalized.slice(3)) ||
          c.code !== displayGeneratedCode(c.normalized, pattern) ||
          c.batch_id !== batchId ||
          c.kind !== 'unique' ||
          c.max_uses !== 1 ||
          c.uses !== 0 ||
          c.status !== 'active',
      );
      expect(bad).toEqual([]);
      expect(codes[0]?.code).toMatch(/^CLI-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]$/);
      expect(
        await app.db.selectFrom('code_batches').selectAll().where('id', '=', batchId).executeTakeFirst(),
      ).toMatchObject({ campaign_id: campaignId, prefix: 'CLI', random_length: 12, requested: 20_000 });
      // The batch's event was written, and delivered by the command before it exited.
      const events = await app.db
        .selectFrom('outbox')
        .select(['payload', 'published_at'])
        .where('aggregate_id', '=', batchId)
        .execute();
      expect(events).toHaveLength(1);
      expect(events[0]?.payload).toMatchObject({ campaign_id: campaignId, count: 20_000, actor: 'cli' });
      expect(events[0]?.published_at).toBeInstanceOf(Date);
      // The next process knows the batch's shape: a mistyped code of it is refused without a read.
      const sample = codes[0]?.normalized ?? '';
      const last = sample.at(-1) === '2' ? '3' : '2';
      expect(app.codes.patterns.mayExist(sample.slice(0, -1) + last)).toBe(false);
      expect(app.codes.patterns.mayExist(sample)).toBe(true);
    });
  });

  it('codes generate lets the event loop run between chunks, so its progress bar can redraw in a log', async () => {
    // Written to a log or a pipe (not a TTY), the progress bar redraws from a timer every 2 s. A timer
    // fires only when the event loop gets a turn; if generation never yields, a long run shows 0 %
    // and then 100 % and nothing in between. Count event-loop turns (a setImmediate chain) between
    // the first progress line (after the first chunk of 5,000) and the final one.
    let turns = 0;
    let spinning = true;
    const spin = () => {
      if (!spinning) return;
      turns += 1;
      setImmediate(spin);
    };
    setImmediate(spin);
    const turnsAtWrite: { text: string; turns: number }[] = [];
    let run: CliRun;
    try {
      run = await runCli(
        env,
        ['codes', 'generate', campaigns.progress, '--count', '15000', '--prefix', 'TURN'],
        (text) => turnsAtWrite.push({ text, turns }),
      );
    } finally {
      spinning = false;
    }
    expect(run.error).toBeUndefined();
    const firstProgress = turnsAtWrite.find((w) => w.text.includes('generating ['));
    const done = turnsAtWrite.find((w) => w.text.startsWith('generated 15000 codes'));
    expect(firstProgress?.text).toContain('0/15000');
    expect(done).toBeDefined();
    expect((done?.turns ?? 0) - (firstProgress?.turns ?? 0)).toBeGreaterThan(0);
  });

  it('codes generate honours --length and --max-uses', async () => {
    const campaignId = campaigns.options;
    const args = ['--count', '7', '--prefix', 'opt', '--length', '8', '--max-uses', '3'];
    const run = await ok(env, ['codes', 'generate', campaignId, ...args]);
    expect(run.stderr).toMatch(/generated 7 codes in batch bat_/);
    const codes = await withApp(env, (app) =>
      app.db
        .selectFrom('codes')
        .select(['code', 'normalized', 'max_uses'])
        .where('campaign_id', '=', campaignId)
        .execute(),
    );
    expect(codes).toHaveLength(7);
    for (const c of codes) {
      expect(c.normalized).toMatch(new RegExp(`^OPT[${CODE_ALPHABET}]{9}$`));
      expect(hasValidCheckCharacter(c.normalized.slice(3))).toBe(true);
      expect(c.code).toMatch(/^OPT-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]$/);
      expect(c.max_uses).toBe(3);
    }
  });

  it('codes generate refuses bad options with a clear message and creates nothing', async () => {
    const campaignId = campaigns.bad;
    for (const count of ['0', '-5', '2.5', 'many', '50000001']) {
      const run = await runCli(env, ['codes', 'generate', campaignId, '--count', count]);
      expect(run.error, count).toMatchObject({ code: 'commander.invalidArgument', exitCode: 1 });
      expect(run.stderr).toContain(
        `error: option '--count <n>' argument '${count}' is invalid. a whole number from 1 to 50000000`,
      );
      expect(run.stdout).toBe('');
    }
    const noCount = await runCli(env, ['codes', 'generate', campaignId]);
    expect(noCount.error).toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
    expect(noCount.stderr).toContain("error: required option '--count <n>' not specified");

    // Parsed, then refused by the service with a reason.
    const shortCodes = await runCli(env, ['codes', 'generate', campaignId, '--count', '5', '--length', '7']);
    expect(shortCodes.error).toMatchObject({
      code: 'validation_failed',
      message: 'invalid code pattern: random_length_out_of_range',
    });
    const badPrefix = await runCli(env, ['codes', 'generate', campaignId, '--count', '5', '--prefix', 'a!b']);
    expect(badPrefix.error).toMatchObject({ code: 'validation_failed' });
    const noCampaign = await runCli(env, ['codes', 'generate', 'cmp_NOPE', '--count', '5']);
    expect(noCampaign.error).toMatchObject({ code: 'campaign_not_found' });

    await withApp(env, async (app) => {
      for (const table of ['codes', 'code_batches'] as const) {
        const rows = await app.db
          .selectFrom(table)
          .select('id')
          .where('campaign_id', '=', campaignId)
          .execute();
        expect(rows, table).toEqual([]);
      }
      const batches = await app.db.selectFrom('code_batches').select('prefix').execute();
      expect(batches.map((b) => b.prefix)).not.toContain('AB');
    });
  });

  it('codes export writes every code as CSV; codes import reads it back into another database', async () => {
    const source = campaigns.source;
    await ok(env, ['codes', 'generate', source, '--count', '30', '--prefix', 'RT']);

    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-csv-'));
    try {
      const file = path.join(dir, 'codes.csv');
      const exported = await ok(env, ['codes', 'export', source, '--out', file]);
      expect(exported.stdout).toBe('');
      const csv = await readFile(file, 'utf8');
      const rows = readCsv(csv);
      expect(csv.split('\n')[0]?.split(',')).toEqual(
        expect.arrayContaining(['code', 'customer_id', 'max_uses', 'uses', 'status', 'created_at']),
      );
      expect(rows).toHaveLength(33);
      expect(rows).toContainEqual(
        expect.objectContaining({
          code: 'RT-PUBLIC',
          customer_id: '',
          max_uses: '',
          uses: '0',
          status: 'active',
        }),
      );
      expect(rows).toContainEqual(
        expect.objectContaining({
          code: 'rt bound 1',
          customer_id: 'cus_9',
          max_uses: '2',
          status: 'active',
        }),
      );
      expect(rows).toContainEqual(expect.objectContaining({ code: 'RT-REVOKED', status: 'revoked' }));
      const generated = rows.filter((r) =>
        /^RT-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]$/.test(r.code ?? ''),
      );
      expect(generated).toHaveLength(30);
      for (const r of generated) {
        expect(r).toMatchObject({ customer_id: '', max_uses: '1', uses: '0', status: 'active' });
        expect(new Date(r.created_at ?? '').toISOString()).toBe(r.created_at);
      }
      // Without --out the same CSV goes to stdout.
      expect((await ok(env, ['codes', 'export', source])).stdout).toBe(csv);

      // Into another campaign of the same database: every code is taken, so nothing is imported.
      const refused = await runCli(env, ['codes', 'import', campaigns.sameDb, file]);
      expect(refused.error).toMatchObject({ code: 'code_already_exists' });
      await withApp(env, async (app) => {
        const owners = await app.db
          .selectFrom('codes')
          .select((eb) => ['campaign_id', eb.fn.countAll<number>().as('n')])
          .where('campaign_id', 'in', [source, campaigns.sameDb])
          .groupBy('campaign_id')
          .execute();
        expect(owners.map((o) => [o.campaign_id, Number(o.n)])).toEqual([[source, 33]]);
        const imported = await app.db
          .selectFrom('outbox')
          .select('id')
          .where('type', '=', 'code.imported')
          .where('aggregate_id', '=', campaigns.sameDb)
          .execute();
        expect(imported).toEqual([]);
      });

      // Into a campaign of a fresh database: the same codes, customers, limits and states.
      const other = await dbs.fresh();
      const target = await withApp(
        other,
        async (app) => (await app.campaigns.create(campaignInput('imported'), 'test')).campaign.id,
      );
      const imported = await ok(other, ['codes', 'import', target, file]);
      expect(imported.stderr).toMatch(/imported 33 codes\n$/);
      const reexported = path.join(dir, 'again.csv');
      await ok(other, ['codes', 'export', target, '--out', reexported]);
      const comparable = (records: Record<string, string>[]) =>
        records.map(({ created_at: _, ...rest }) => JSON.stringify(rest)).sort();
      expect(comparable(readCsv(await readFile(reexported, 'utf8')))).toEqual(comparable(rows));
      // An imported code works on the new database, typed in any case.
      await withApp(other, async (app) => {
        const result = await app.redemptions.validate({
          code: (generated[0]?.code ?? '').toLowerCase(),
          customer: { id: 'cus_1' },
          cart: { currency: 'USD', subtotalMinor: 10_000, shippingMinor: 0 },
        });
        expect(result).toMatchObject({ valid: true, discountMinor: 500, campaignId: target });
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('codes export shows a progress bar on a terminal or when asked, and ends with the count, file and size', async () => {
    const campaignId = campaigns.exportProgress;
    await ok(env, ['codes', 'generate', campaignId, '--count', '2500', '--prefix', 'PRG']);
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-csv-'));
    try {
      const file = path.join(dir, 'codes.csv');
      const summary = async () => {
        const size = (await stat(file)).size;
        const shown =
          size < 1024 * 1024 ? `${(size / 1024).toFixed(1)} KiB` : `${(size / 1024 ** 2).toFixed(1)} MiB`;
        return `exported 2,500 codes to ${file} (${shown})\n`;
      };

      // Stderr is not a terminal here: no bar unless asked, only the summary.
      const quiet = await ok(env, ['codes', 'export', campaignId, '--out', file]);
      expect(quiet.stderr).toBe(await summary());
      const rows = readCsv(await readFile(file, 'utf8'));
      expect(rows).toHaveLength(2_500);
      expect(new Set(rows.map((r) => r.code)).size).toBe(2_500);

      const asked = await ok(env, ['codes', 'export', campaignId, '--out', file, '--progress']);
      expect(asked.stderr).toContain('exporting [');
      expect(asked.stderr).toMatch(/100% \| 2500\/2500/);
      expect(asked.stderr.endsWith(await summary())).toBe(true);

      const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
      Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
      try {
        const onTerminal = await ok(env, ['codes', 'export', campaignId, '--out', file]);
        expect(onTerminal.stderr).toMatch(/exporting \[.*\] 100% \| 2500\/2500/);
        const off = await ok(env, ['codes', 'export', campaignId, '--out', file, '--no-progress']);
        expect(off.stderr).toBe(await summary());
      } finally {
        if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
        else delete (process.stderr as { isTTY?: boolean }).isTTY;
      }

      // To stdout: the CSV alone there, the summary on stderr.
      const piped = await ok(env, ['codes', 'export', campaignId]);
      expect(readCsv(piped.stdout)).toHaveLength(2_500);
      expect(piped.stderr).toMatch(/^exported 2,500 codes to stdout \(\d+\.\d KiB\)\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('codes import refuses a file with a duplicate (or a bad header), changing nothing', async () => {
    const campaignId = campaigns.duplicates;
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-csv-'));
    try {
      const dup = path.join(dir, 'dup.csv');
      await writeFile(dup, 'code,customer_id,max_uses\nDUPE-ONE,,1\nFRESH-ONE,cus_1,\ndupe one,,1\n');
      const run = await runCli(env, ['codes', 'import', campaignId, dup]);
      expect(run.error).toMatchObject({
        code: 'validation_failed',
        extensions: { errors: [{ index: 2, code: 'dupe one', message: 'appears twice' }] },
      });
      const header = path.join(dir, 'header.csv');
      await writeFile(header, 'coupon,max_uses\nABC,1\n');
      const badHeader = await runCli(env, ['codes', 'import', campaignId, header]);
      expect(badHeader.error).toMatchObject({ code: 'validation_failed' });
      expect(String(badHeader.error)).toContain('the CSV header must have a code column');
      await withApp(env, async (app) => {
        const codes = await app.db
          .selectFrom('codes')
          .select('normalized')
          .where('campaign_id', '=', campaignId)
          .execute();
        expect(codes).toEqual([]);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('model import refuses a file of another format with a clear error; model train refuses too few labels', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'promoguard-model-'));
    try {
      const file = path.join(dir, 'model.json');
      const model = {
        format: 2,
        kind: 'logistic_regression',
        features: ['linked_accounts'],
        means: [1],
        scales: [1],
        weights: [1],
        intercept: 0,
      };
      await writeFile(file, JSON.stringify({ promoguard_model_file: 1, model }));
      const foreign = await runCli(env, ['model', 'import', file]);
      expect(foreign.error).toMatchObject({ code: 'model_format_unsupported' });
      expect(String(foreign.error)).toContain(
        'model format 2 is not supported: this version of Promoguard reads format 1',
      );
      await writeFile(file, JSON.stringify({ promoguard_model_file: 1, model: { ...model, format: 1 } }));
      const imported = await ok(env, ['model', 'import', file]);
      expect(imported.stdout.trim()).toMatch(/^\d+$/);
      const listed = await ok(env, ['model', 'list']);
      expect(listed.stdout).toContain(`${imported.stdout.trim()}\tshadow\tformat 1`);
      await writeFile(file, 'not json');
      const garbage = await runCli(env, ['model', 'import', file]);
      expect(String(garbage.error)).toContain('is not a JSON model file');
      const train = await runCli(env, ['model', 'train']);
      expect(train.error).toMatchObject({ code: 'not_enough_labels' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Only against a build that exists: the suite never builds.
  if (DIST_BUILT) {
    it('serve (node bin/promoguard.js) prints an admin key once, serves, and stops on SIGTERM', async () => {
      const served = await dbs.fresh();
      const first = await startServe(served);
      try {
        const key = /\n {2}(pgk_[A-Za-z0-9_-]{43})\n/.exec(first.stdout())?.[1];
        expect(key, first.stdout()).toBeDefined();
        expect((await fetch(`${first.address}/healthz`)).status).toBe(200);
        const list = await fetch(`${first.address}/v1/campaigns`, {
          headers: { authorization: `Bearer ${key}` },
        });
        expect(list.status).toBe(200);
        expect((await fetch(`${first.address}/v1/campaigns`)).status).toBe(401);
      } finally {
        expect(await first.stop()).toBe(0);
      }
      const second = await startServe(served);
      try {
        expect(second.stdout()).not.toContain('pgk_');
      } finally {
        expect(await second.stop()).toBe(0);
      }
    });
  } else if (process.env.CI === 'true') {
    // `npm test` builds first (pretest); under CI a missing build is a failure, never a silent skip.
    it('serve runs from the built dist/', () => {
      throw new Error('dist/ is not built: run `npm run build` (npm test does it in pretest)');
    });
  } else {
    process.stderr.write('cli.test: dist/ is not built; the `serve` process test is not registered\n');
  }
});

/** Start `node bin/promoguard.js serve` on a free port and wait until it listens. */
async function startServe(env: Env) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['bin/promoguard.js', 'serve'], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const match = /API docs at (http:\/\/127\.0\.0\.1:\d+)\/docs/.exec(stdout);
      if (match?.[1]) {
        clearInterval(timer);
        resolve(match[1]);
      }
    }, 25);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`serve exited with ${code}\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
  return {
    address,
    stdout: () => stdout,
    async stop(): Promise<number | null> {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
