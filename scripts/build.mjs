// Builds dist/: tsc, then the store's .sql files, which tsc does not copy. With --if-stale (what
// `npm start` and `npm test` run) it builds only when the sources changed since the last build: what
// the build read is summed into dist/.build-stamp (a content hash, not mtimes, which a checkout or a
// copy changes without changing the sources).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = path.join(root, 'dist', '.build-stamp');
const INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/build.mjs'];

function files(entry) {
  const full = path.join(root, entry);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [full];
  return readdirSync(full, { withFileTypes: true }).flatMap((item) => files(path.join(entry, item.name)));
}

function sourceHash() {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap(files).sort()) {
    hash.update(path.relative(root, file));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

const current = sourceHash();
const built = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : null;
const ifStale = process.argv.includes('--if-stale');
if (ifStale && built === current && existsSync(path.join(root, 'dist', 'cli.js'))) process.exit(0);
if (ifStale) process.stderr.write('promoguard: building dist/ (its sources changed since the last build)\n');
execFileSync(
  process.execPath,
  [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
for (const dir of ['store/sql', 'store/migrations']) {
  cpSync(path.join(root, 'src', dir), path.join(root, 'dist', dir), {
    recursive: true,
    filter: (source) => !source.endsWith('.ts'),
  });
}
writeFileSync(stampFile, `${current}\n`);
