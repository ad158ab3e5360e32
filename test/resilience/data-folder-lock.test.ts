/**
 * One process at a time on a PGlite data folder: real `promoguard` processes (node bin/promoguard.js)
 * on one folder. A second process, CLI or server, must refuse at once with a message naming the holder,
 * instead of writing into a copy the running server will overwrite (a key that "was created" and is
 * gone after a restart). A stopped or killed holder leaves the folder usable.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/connect.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST_BUILT = existsSync(path.join(ROOT, 'dist/cli.js'));

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function promoguard(
  args: string[],
  dataDir: string,
): { child: ChildProcessWithoutNullStreams; done: Promise<Finished>; output: () => string } {
  const child = spawn(process.execPath, ['bin/promoguard.js', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      PROMOGUARD_DATA_DIR: dataDir,
      DATABASE_URL: '',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const done = new Promise<Finished>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done, output: () => stdout + stderr };
}

async function serving(dataDir: string) {
  const server = promoguard(['serve'], dataDir);
  const deadline = Date.now() + 60_000;
  while (!/listening/.test(server.output())) {
    const exited = await Promise.race([server.done, new Promise((r) => setTimeout(() => r(null), 50))]);
    if (exited) throw new Error(`serve exited: ${JSON.stringify(exited)}`);
    if (Date.now() > deadline) throw new Error(`serve did not listen: ${server.output()}`);
  }
  return server;
}

const inUse = (folder: string, pid: number | undefined) =>
  `the data folder ${folder} is in use by process ${pid}; stop it or use DATABASE_URL`;

describe('a PGlite data folder is held by one process at a time', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'promoguard-lock-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a second open in the same process is refused, and the folder opens again once closed', async () => {
    const folder = path.join(dir, 'in-process');
    const first = await openDatabase({ dataDir: folder });
    try {
      await expect(openDatabase({ dataDir: folder })).rejects.toThrow(inUse(folder, process.pid));
    } finally {
      await first.close();
    }
    const again = await openDatabase({ dataDir: folder });
    await again.close();
  });

  if (DIST_BUILT) {
    it('while a server runs, the CLI and a second server refuse at once; after it stops, the CLI works', async () => {
      const folder = path.join(dir, 'served');
      const server = await serving(folder);
      try {
        const created = await promoguard(['keys', 'create', '--name', 'late', '--scope', 'admin'], folder)
          .done;
        expect(created.code).not.toBe(0);
        expect(created.stdout).toBe('');
        expect(created.stderr).toContain(inUse(folder, server.child.pid));

        const second = await promoguard(['serve'], folder).done;
        expect(second.code).not.toBe(0);
        expect(second.stderr).toContain(inUse(folder, server.child.pid));
      } finally {
        server.child.kill('SIGTERM');
        expect((await server.done).code).toBe(0);
      }
      const listed = await promoguard(['keys', 'list'], folder).done;
      expect(listed.code).toBe(0);
      expect(listed.stdout).toContain('bootstrap admin');
    });

    it('a killed server leaves a lock naming a dead process, which the next process takes over', async () => {
      // The folder of the test before: made already, and free again.
      const folder = path.join(dir, 'served');
      const server = await serving(folder);
      server.child.kill('SIGKILL');
      await server.done;
      const created = await promoguard(
        ['keys', 'create', '--name', 'after crash', '--scope', 'admin'],
        folder,
      ).done;
      expect(created.stderr).not.toContain('in use');
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/^pgk_/);
    });
  } else if (process.env['CI'] === 'true') {
    it('runs from the built dist/', () => {
      throw new Error('dist/ is not built: run `npm run build` (npm test does it in pretest)');
    });
  } else {
    process.stderr.write('data-folder-lock.test: dist/ is not built; the process tests are not registered\n');
  }
});
