/**
 * `promoguard <command>`: serve the API, migrate, manage API keys, and move codes in bulk.
 * Secrets (a new API key) go to stdout once; everything else a person reads goes to stderr.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type App, createApp } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { AppError } from './errors.js';
import { codesCsv, parseCodeCsv } from './formats/code-csv.js';
import { reconciliationCsv, reconciliationTable } from './formats/reconciliation.js';
import { listenForMetrics } from './http/routes/metrics.js';
import { API_VERSION, buildServer } from './http/server.js';
import { SCOPES, type Scope } from './services/api-keys.js';
import { ROLES } from './services/console-users.js';
import { startEmbeddedServer } from './simulate/embedded-server.js';
import { formatScorecard, writeResult } from './simulate/report.js';
import { runSimulation } from './simulate/runner.js';
import { SCENARIOS, selectScenarios } from './simulate/scenarios.js';
import type { ConsoleRole } from './store/schema.js';

const stderrLogger = {
  error: (obj: object, msg: string) => process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`),
};

async function withApp<T>(config: Config, run: (app: App) => Promise<T>): Promise<T> {
  const app = await createApp({ config, logger: stderrLogger, relay: false });
  try {
    const result = await run(app);
    // Deliver what the command wrote to the outbox before leaving (subscribers in this process).
    await app.relay.drain();
    return result;
  } finally {
    await app.close();
  }
}

function positiveInt(max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidArgumentError(`a whole number from 1 to ${max}`);
    return n;
  };
}

function progressBar(label: string) {
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`,
    stream: process.stderr,
    hideCursor: true,
    etaBuffer: 50,
    noTTYOutput: true,
    notTTYSchedule: 2000,
  });
  let started = false;
  let shownTotal = 0;
  return {
    update(done: number, total: number) {
      if (!started) {
        bar.start(total, 0);
        started = true;
        shownTotal = total;
      } else if (total !== shownTotal) {
        bar.setTotal(total);
        shownTotal = total;
      }
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A byte count as a person reads it: 1,234 bytes, 12.3 KiB, 61.0 MiB. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes.toLocaleString('en')} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

async function serve(config: Config): Promise<void> {
  // Until the server (and its logger) exists, start-up errors (Redis away, a relay pass) go to stderr.
  let server: Awaited<ReturnType<typeof buildServer>> | undefined;
  const app = await createApp({
    config,
    logger: {
      error: (obj, msg) => (server ? server.log.error(obj, msg) : stderrLogger.error(obj, msg)),
      info: (obj, msg) => (server ? server.log.info(obj, msg) : stderrLogger.error(obj, msg)),
    },
  });
  server = await buildServer(app);
  const adminKey = await app.apiKeys.bootstrapAdminKey();
  if (adminKey) {
    // Printed once, never logged: the database keeps only its hash.
    process.stdout.write(
      `\nFirst start on an empty database: created an admin API key. It is shown only this once:\n\n  ${adminKey}\n\n` +
        'Make narrower keys with POST /v1/api-keys or `promoguard keys create`, and keep this one safe.\n\n',
    );
  }
  let closing = false;
  let metricsServer: Awaited<ReturnType<typeof listenForMetrics>> = null;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    server.log.info({ signal }, 'shutting down');
    metricsServer?.close();
    await server.close();
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  const address = await server.listen({ port: config.PORT, host: config.HOST });
  metricsServer = await listenForMetrics(app);
  server.log.info(
    {
      address,
      database: app.backend,
      dataDir: app.backend === 'pglite' ? config.PROMOGUARD_DATA_DIR : undefined,
    },
    `promoguard ${API_VERSION} listening; API docs at ${address}/docs`,
  );
}

/** Mismatches the terminal summary lists; the CSV (`--out`) and the API have all of them. */
const MISMATCHES_SHOWN = 20;

/**
 * `promoguard reconcile`: the exit code is the verdict (0 clean, 1 a mismatch, 2 the run could not
 * be made), so a cron job or CI step can act on it without reading the output.
 */
async function reconcile(getConfig: () => Config, opts: { out?: string; progress: boolean }): Promise<void> {
  try {
    await withApp(getConfig(), async (app) => {
      const bar = opts.progress ? progressBar('reconciling') : null;
      let result: Awaited<ReturnType<typeof app.reconciliation.run>>;
      try {
        result = await app.reconciliation.run('cli', (p) => bar?.update(p.done, p.total));
      } finally {
        bar?.stop();
      }
      if (result.outcome !== 'finished') {
        const id = result.outcome === 'running' ? ` (${result.id})` : '';
        process.stderr.write(
          `promoguard: a reconciliation is already running${id}; try again when it ends\n`,
        );
        process.exitCode = 2;
        return;
      }
      const report = result.reconciliation;
      const first = await app.reconciliation.mismatches(report.id, { limit: MISMATCHES_SHOWN });
      process.stdout.write(reconciliationTable(report, first));
      if (opts.out) {
        await pipeline(
          reconciliationCsv(app.reconciliation.iterateMismatches(report.id)),
          createWriteStream(opts.out),
        );
        process.stderr.write(`wrote ${opts.out}\n`);
      }
      process.exitCode = report.status === 'ok' ? 0 : report.status === 'mismatch' ? 1 : 2;
    });
  } catch (err) {
    process.stderr.write(
      `promoguard: reconcile failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 2;
  }
}

/**
 * A password read from stdin: piped (its first line), or typed at a terminal without echo. Never an
 * argument: argv is visible to every user of the machine and kept in shell history.
 */
async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Uint8Array));
    return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  let typed = '';
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(typed);
          return;
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export function buildCli(getConfig: () => Config): Command {
  const program = new Command('promoguard')
    .description('Promotion engine: coupons, validation, redemption, abuse defenses')
    .version(API_VERSION)
    .showHelpAfterError();

  program
    .command('serve')
    .description('Run the HTTP API (migrates first)')
    .action(() => serve(getConfig()));

  program
    .command('migrate')
    .description('Apply pending database migrations and exit')
    .action(() =>
      withApp(getConfig(), async () => {
        process.stderr.write('database is at the latest migration\n');
      }),
    );

  const users = program.command('users').description('Manage console users');
  users
    .command('create')
    .description('Create a console user (e.g. the first admin); the password is read from stdin or prompted')
    .requiredOption('--email <email>', 'the address the person signs in with')
    .addOption(
      new Option('--role <role>', 'what the person may do').choices([...ROLES]).makeOptionMandatory(),
    )
    .action((opts: { email: string; role: ConsoleRole }) =>
      withApp(getConfig(), async (app) => {
        const password = await readPassword('password: ');
        try {
          const user = await app.consoleUsers.create({ email: opts.email, role: opts.role, password }, 'cli');
          process.stderr.write(`created ${user.id} (${user.email}, ${user.role}); sign in at /console\n`);
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          process.stderr.write(`promoguard: ${err.detail ?? err.message}\n`);
          process.exitCode = 1;
        }
      }),
    );

  const keys = program.command('keys').description('Manage API keys');
  keys
    .command('create')
    .description('Create an API key; its secret is printed once to stdout')
    .requiredOption('--name <name>', 'what the key is for')
    .addOption(new Option('--scope <scope...>', 'scopes to grant').choices([...SCOPES]).makeOptionMandatory())
    .action((opts: { name: string; scope: Scope[] }) =>
      withApp(getConfig(), async (app) => {
        const { key, secret } = await app.apiKeys.create(opts.name, opts.scope, 'cli');
        process.stderr.write(`created ${key.id} (${key.scopes.join(', ')}); the secret is shown only now:\n`);
        process.stdout.write(`${secret}\n`);
      }),
    );
  keys
    .command('list')
    .description('List API keys (never their secrets)')
    .action(() =>
      withApp(getConfig(), async (app) => {
        for (const k of await app.apiKeys.list()) {
          const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active';
          process.stdout.write(`${k.id}\t…${k.keyHint}\t${k.scopes.join(',')}\t${state}\t${k.name}\n`);
        }
      }),
    );
  keys
    .command('revoke <id>')
    .description('Revoke an API key')
    .action((id: string) =>
      withApp(getConfig(), async (app) => {
        if (!(await app.apiKeys.revoke(id, 'cli', null))) throw new Error(`no active key ${id}`);
        process.stderr.write(`revoked ${id}\n`);
      }),
    );

  const codes = program.command('codes').description('Generate, import and export codes');
  codes
    .command('generate <campaign-id>')
    .description('Generate unique codes (any number; committed in chunks, with progress)')
    .requiredOption('--count <n>', 'how many', positiveInt(50_000_000))
    .option('--prefix <prefix>', 'letters and digits put before each code', '')
    .option('--length <n>', 'random symbols per code (5 bits each, at least 8)', positiveInt(32), 12)
    .option('--max-uses <n>', 'uses per code', positiveInt(1_000_000), 1)
    .action((campaignId: string, opts: { count: number; prefix: string; length: number; maxUses: number }) =>
      withApp(getConfig(), async (app) => {
        const bar = progressBar('generating');
        try {
          const result = await app.codes.generate(
            campaignId,
            { count: opts.count, prefix: opts.prefix, randomLength: opts.length, maxUses: opts.maxUses },
            'cli',
            { atomic: false, onProgress: (done, total) => bar.update(done, total) },
          );
          bar.stop();
          process.stderr.write(`generated ${result.count} codes in batch ${result.batchId}\n`);
        } finally {
          bar.stop();
        }
      }),
    );
  codes
    .command('import <campaign-id> <file>')
    .description(
      'Import codes from CSV (header: code[,customer_id][,max_uses][,partner][,status]); all or nothing',
    )
    .action((campaignId: string, file: string) =>
      withApp(getConfig(), async (app) => {
        const chunks: Buffer[] = [];
        for await (const chunk of createReadStream(file)) chunks.push(chunk as Buffer);
        const specs = parseCodeCsv(Buffer.concat(chunks).toString('utf8'), 10_000_000);
        const bar = progressBar('importing');
        try {
          const n = await app.codes.importCodes(campaignId, specs, 'cli', (done, total) =>
            bar.update(done, total),
          );
          bar.stop();
          process.stderr.write(`imported ${n} codes\n`);
        } finally {
          bar.stop();
        }
      }),
    );
  codes
    .command('export <campaign-id>')
    .description('Export every code of a campaign as CSV, then say how many codes and bytes were written')
    .option('--out <file>', 'write here instead of stdout')
    .option('--progress', 'show a progress bar even when stderr is not a terminal')
    .option('--no-progress', 'no progress bar, even on a terminal')
    .action((campaignId: string, opts: { out?: string; progress?: boolean }) =>
      withApp(getConfig(), async (app) => {
        await app.campaigns.get(campaignId);
        // A bar's redraws would garble a log; a person at a terminal (or one who asks) gets it.
        const bar = (opts.progress ?? process.stderr.isTTY === true) ? progressBar('exporting') : null;
        const total = bar ? await app.codes.count(campaignId) : 0;
        const out = opts.out
          ? createWriteStream(opts.out)
          : new Writable({ write: (c, _e, cb) => process.stdout.write(c, cb) });
        let rows = 0;
        let bytes = 0;
        const counted = async function* (chunks: AsyncIterable<string>) {
          for await (const chunk of chunks) {
            bytes += Buffer.byteLength(chunk);
            yield chunk;
          }
        };
        bar?.update(0, total);
        try {
          await pipeline(
            counted(
              codesCsv(app.codes.exportCsv(campaignId), (n) => {
                rows += n;
                bar?.update(rows, Math.max(rows, total));
              }),
            ),
            out,
          );
        } finally {
          bar?.stop();
        }
        process.stderr.write(
          `exported ${rows.toLocaleString('en')} codes to ${opts.out ?? 'stdout'} (${formatSize(bytes)})\n`,
        );
      }),
    );

  const model = program.command('model').description('Train, promote and move the learned score');
  model
    .command('train')
    .description('Fit a model on the labeled decisions of a period; it is stored in shadow and printed')
    .option('--from <time>', 'start of the period (ISO 8601)', isoTime)
    .option('--to <time>', 'end of the period, exclusive (ISO 8601; now)', isoTime)
    .option('--steps <n>', 'gradient steps', positiveInt(20_000), 500)
    .action((opts: { from?: Date; to?: Date; steps: number }) =>
      withApp(getConfig(), async (app) => {
        const to = opts.to ?? new Date();
        const from = opts.from ?? new Date(to.getTime() - 90 * 86_400_000);
        const report = await app.models.train({ from, to, steps: opts.steps }, 'cli', (read) =>
          process.stderr.write(`read ${read.toLocaleString('en')} labeled decisions\r`),
        );
        const h = report.holdout;
        const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)} %`);
        process.stderr.write(
          `\nmodel ${report.model.version} in shadow: trained on ${report.training.rows} decisions (${report.training.abuse} abuse); ` +
            `holdout ${h.count}: precision ${pct(h.precision)}, recall ${pct(h.recall)}, brier ${h.brier?.toFixed(4) ?? 'n/a'}\n`,
        );
        process.stdout.write(`${report.model.version}\n`);
      }),
    );
  model
    .command('list')
    .description('List the models with their status and holdout figures')
    .action(() =>
      withApp(getConfig(), async (app) => {
        for (const m of await app.models.list()) {
          const e = m.evaluation as { precision?: number | null; recall?: number | null };
          process.stdout.write(
            `${m.version}\t${m.status}\tformat ${m.format}\tprecision ${e.precision ?? 'n/a'}\trecall ${e.recall ?? 'n/a'}\t${m.createdAt.toISOString()}\n`,
          );
        }
      }),
    );
  for (const [name, what] of [
    ['promote', 'Make a model the enforcing one (audited)'],
    ['retire', 'Stop a model from scoring (audited)'],
  ] as const) {
    model
      .command(`${name} <version>`)
      .description(what)
      .requiredOption('--reason <text>', 'why; kept in the audit log')
      .action((version: string, opts: { reason: string }) =>
        withApp(getConfig(), async (app) => {
          const v = positiveInt(2_147_483_647)(version);
          const m =
            name === 'promote'
              ? await app.models.promote(v, opts.reason, 'cli')
              : await app.models.retire(v, opts.reason, 'cli');
          process.stderr.write(`model ${m.version} is ${m.status}\n`);
        }),
      );
  }
  model
    .command('export <version>')
    .description('Write a model file (JSON) to stdout or --out')
    .option('--out <file>', 'write to this file')
    .action((version: string, opts: { out?: string }) =>
      withApp(getConfig(), async (app) => {
        const file = `${JSON.stringify(await app.models.exportFile(positiveInt(2_147_483_647)(version)), null, 2)}\n`;
        if (opts.out) await writeFile(opts.out, file);
        else process.stdout.write(file);
      }),
    );
  model
    .command('import <file>')
    .description('Import a model file as the shadow model (a file of another format is refused)')
    .action((file: string) =>
      withApp(getConfig(), async (app) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(await readFile(file, 'utf8'));
        } catch (err) {
          throw new Error(
            `${file} is not a JSON model file: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        const m = await app.models.importFile(parsed, 'cli');
        process.stderr.write(`imported as model ${m.version} (shadow)\n`);
        process.stdout.write(`${m.version}\n`);
      }),
    );

  program
    .command('reconcile')
    .description(
      'Check every campaign and the points ledger (counters, ledger sums, balances, events) and print the report; ' +
        'exit 0 when clean, 1 on any mismatch, 2 when the run fails',
    )
    .option(
      '--out <file>',
      'also write every mismatch as CSV (kind, entity, currency, expected, actual, difference)',
    )
    .option('--no-progress', 'no progress bar')
    .action((opts: { out?: string; progress: boolean }) => reconcile(getConfig, opts));

  program
    .command('simulate')
    .description(
      'Drive a server with seeded, labelled honest and abusive traffic and print a detection scorecard',
    )
    .option('--url <url>', 'the server to drive', 'http://127.0.0.1:8080')
    .option('--api-key <key>', 'an admin API key (default: $PROMOGUARD_API_KEY)')
    .option('--embedded', 'start an in-process server on a temporary PGlite and drive it instead of --url')
    .option('--seed <n>', 'seed: the same seed makes the same actors, codes and attempts', wholeNumber, 1)
    .option(
      '--scale <x>',
      'multiplies the number of customers and attackers of every scenario',
      positiveNumber,
      1,
    )
    .option('--duration <seconds>', 'span over which each scenario spreads its traffic', positiveNumber, 60)
    .option('--scenarios <names>', 'comma-separated scenario names (default: all; see --list)')
    .option('--list', 'list the scenarios and exit')
    .option('--concurrency <n>', 'requests in flight at most', positiveInt(1_000), 16)
    .option(
      '--tag <tag>',
      'letters and digits put into every id, code and identifier, keeping runs against one server apart ' +
        '(default: new for each run; "sim" with --embedded, whose database is always fresh)',
    )
    .option('--out <file>', 'write the JSON result here (default: ./simulate-results/<time>-seed<seed>.json)')
    .option('--no-progress', 'no progress bar')
    .option(
      '--operator',
      'operator mode: remediation policies in dry_run enforce during the run, and the alerts and remediations are reported (default with --embedded)',
    )
    .option('--no-operator', 'no operator mode (with --embedded)')
    .option(
      '--label-decisions',
      'afterwards, label every stored decision with the truth (abuse or legitimate): training data for `model train`',
    )
    .action(async (opts: SimulateCliOptions) => {
      if (opts.list) {
        for (const s of SCENARIOS)
          process.stdout.write(`${s.name.padEnd(22)} ${s.label.padEnd(7)} ${s.summary}\n`);
        return;
      }
      const scenarios = opts.scenarios
        ?.split(',')
        .map((n) => n.trim())
        .filter(Boolean);
      selectScenarios(scenarios); // unknown names fail before anything starts
      const tag = opts.tag ?? (opts.embedded ? 'sim' : Date.now().toString(36).slice(-6));
      if (!/^[A-Za-z0-9]{1,10}$/.test(tag))
        throw new InvalidArgumentError('--tag: 1 to 10 letters or digits');
      const apiKey = opts.apiKey ?? process.env['PROMOGUARD_API_KEY'];
      if (!opts.embedded && !apiKey) {
        throw new Error(
          'simulate needs an admin API key: --api-key or PROMOGUARD_API_KEY (or use --embedded)',
        );
      }
      const embedded = opts.embedded ? await startEmbeddedServer(getConfig()) : null;
      const bar = opts.progress
        ? new SingleBar({
            format: 'simulating [{bar}] {percentage}% | {value}/{total} attempts | {duration}s',
            stream: process.stderr,
            hideCursor: true,
            noTTYOutput: true,
            notTTYSchedule: 5000,
          })
        : null;
      let started = false;
      try {
        const result = await runSimulation({
          url: embedded?.url ?? opts.url,
          apiKey: embedded?.apiKey ?? (apiKey as string),
          seed: opts.seed,
          scale: opts.scale,
          durationSeconds: opts.duration,
          tag,
          concurrency: opts.concurrency,
          scenarios: scenarios ?? null,
          labelDecisions: opts.labelDecisions ?? false,
          operator: opts.operator ?? opts.embedded === true,
          onProgress: (done, planned) => {
            if (!bar) return;
            if (!started) {
              bar.start(planned, done);
              started = true;
            }
            bar.setTotal(planned);
            bar.update(done);
          },
        });
        bar?.stop();
        started = false;
        process.stdout.write(formatScorecard(result));
        const file = await writeResult(result, opts.out);
        process.stderr.write(`wrote ${file}\n`);
      } finally {
        if (started) bar?.stop();
        await embedded?.close();
      }
    });

  return program;
}

interface SimulateCliOptions {
  url: string;
  apiKey?: string;
  embedded?: boolean;
  seed: number;
  scale: number;
  duration: number;
  scenarios?: string;
  list?: boolean;
  concurrency: number;
  tag?: string;
  out?: string;
  progress: boolean;
  labelDecisions?: boolean;
  operator?: boolean;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('a whole number');
  return n;
}

function isoTime(value: string): Date {
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime()))
    throw new InvalidArgumentError('an ISO 8601 time, e.g. 2026-11-01T00:00:00Z');
  return d;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1_000) throw new InvalidArgumentError('a number above 0');
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const cli = buildCli(() => loadConfig());
  try {
    await cli.parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (err instanceof AppError) {
      const extra =
        Object.keys(err.extensions).length > 0 ? `\n${JSON.stringify(err.extensions, null, 2)}` : '';
      throw new Error(`${err.code}: ${err.message}${extra}`);
    }
    throw err;
  }
}
