// Builds dist/: tsc, then the store's .sql files, which tsc does not copy; and the console (Vite) into
// dist/console. With --if-stale (what `npm start` and `npm test` run) each part builds only when its
// sources changed since its last build: what it read is summed into a stamp (dist/.build-stamp,
// dist/.console-stamp; a content hash, not mtimes, which a checkout or a copy changes without
// changing the sources).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = path.join(root, 'dist', '.build-stamp');
const INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/build.mjs'];
const consoleStampFile = path.join(root, 'dist', '.console-stamp');
const CONSOLE_INPUTS = ['console', 'clients/typescript/src', 'package-lock.json', 'scripts/build.mjs'];

function files(entry) {
  const full = path.join(root, entry);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [full];
  return readdirSync(full, { withFileTypes: true }).flatMap((item) => files(path.join(entry, item.name)));
}

function sourceHash(inputs) {
  const hash = createHash('sha256');
  for (const file of inputs.flatMap(files).sort()) {
    hash.update(path.relative(root, file));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

const ifStale = process.argv.includes('--if-stale');
const stamped = (file) => (existsSync(file) ? readFileSync(file, 'utf8').trim() : null);

async function buildServer() {
  const current = sourceHash(INPUTS);
  if (ifStale && stamped(stampFile) === current && existsSync(path.join(root, 'dist', 'cli.js'))) return;
  if (ifStale)
    process.stderr.write('promoguard: building dist/ (its sources changed since the last build)\n');
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, stdio: 'inherit' },
  );
  for (const dir of ['store/sql', 'store/migrations']) {
    cpSync(path.join(root, 'src', dir), path.join(root, 'dist', dir), {
      recursive: true,
      filter: (source) => !source.endsWith('.ts'),
    });
  }
  writeFileSync(stampFile, `${current}\n`);
}

async function buildConsole() {
  const current = sourceHash(CONSOLE_INPUTS);
  const index = path.join(root, 'dist', 'console', 'index.html');
  if (ifStale && stamped(consoleStampFile) === current && existsSync(index)) return;
  if (ifStale) process.stderr.write('promoguard: building dist/console (its sources changed)\n');
  // Imported only when needed: an unchanged start never loads Vite.
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'console', 'vite.config.ts') });
  writeFileSync(consoleStampFile, `${current}\n`);
}

const only = process.argv.includes('--console')
  ? 'console'
  : process.argv.includes('--server')
    ? 'server'
    : null;
if (only !== 'console') await buildServer();
if (only !== 'server') await buildConsole();
