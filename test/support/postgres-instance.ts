/**
 * A PostgreSQL server of a test's own, on a port of its own, that the test may stop, start, freeze and
 * thaw. Never the shared server (5432): tests that break their database must break only theirs.
 *
 * PostgreSQL refuses to run as root; as root, its commands run as the `postgres` user.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The PostgreSQL binaries: the newest installed under /usr/lib/postgresql, or PG_BIN. */
export function postgresBin(): string | null {
  const given = process.env['PG_BIN'];
  if (given) return existsSync(path.join(given, 'initdb')) ? given : null;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : null;
}

export interface PostgresInstance {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  /** Stops the server: `immediate` cuts every connection at once, `fast` ends them with 57P01. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  /** Starts it again (nothing if it runs). */
  start(): Promise<void>;
  /** Stops the postmaster and every backend with SIGSTOP: connections stay open and nothing answers. */
  freeze(): void;
  thaw(): void;
  /** Stops the server if it runs and removes its data folder. */
  destroy(): Promise<void>;
}

function asPostgres(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const found = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (found.status !== 0)
    throw new Error('running as root and there is no postgres user to run PostgreSQL as');
  return { uid: Number(found.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Creates a data folder and starts a server on `port` (pick one from the range your task was given). */
export async function startPostgres(port: number): Promise<PostgresInstance> {
  const bin = postgresBin();
  if (!bin) throw new Error('no PostgreSQL binaries found (set PG_BIN)');
  const owner = asPostgres();
  const dir = mkdtempSync(path.join(tmpdir(), `promoguard-pg-${port}-`));
  const data = path.join(dir, 'data');
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, 0o700);
  }
  const pgCommand = async (tool: string, args: string[]) => {
    const file = path.join(bin, tool);
    const [cmd, argv] = owner ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    return run(cmd, argv, { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  };
  await pgCommand('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const options = [
    `-p ${port}`,
    '-k /tmp',
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c max_connections=100',
    '-c shared_buffers=32MB',
  ].join(' ');
  let running = false;
  const start = async () => {
    if (running) return;
    await pgCommand('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']);
    running = true;
  };
  const stop = async (mode: 'immediate' | 'fast' = 'fast') => {
    if (!running) return;
    await pgCommand('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    running = false;
  };
  /** The postmaster and its children (backends and helpers). */
  const processes = (): number[] => {
    const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
    return [pid, ...children];
  };
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of processes()) {
      try {
        process.kill(pid, sig);
      } catch {
        // Exited meanwhile.
      }
    }
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    // The postmaster first, so it forks no new backend meanwhile; on thaw, the backends first.
    freeze: () => signal('SIGSTOP'),
    thaw: () => {
      for (const pid of processes().reverse()) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Exited meanwhile.
        }
      }
    },
    async destroy() {
      try {
        if (running) {
          signal('SIGCONT');
          await stop('immediate');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
