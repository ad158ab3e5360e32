#!/usr/bin/env node
/**
 * Adds to package-lock.json the per-platform optional packages npm left out.
 *
 * Why: npm 11 omits optional dependencies for other platforms from the lockfile when the registry
 * cannot serve some of them, and then `npm ci` refuses that same lockfile ("Missing: … from lock
 * file", npm/cli#9846). For each optional dependency a locked package declares but the lockfile lacks,
 * this writes an entry with its version and the os/cpu/libc read from its name, so every platform's
 * `npm ci` accepts the lockfile and skips the binaries that are not for it. Run after changing
 * dependencies: `node scripts/complete-lockfile.mjs`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const OS = [
  'android',
  'darwin',
  'freebsd',
  'linux',
  'openbsd',
  'openharmony',
  'sunos',
  'win32',
  'aix',
  'netbsd',
];
const CPU = ['arm64', 'x64', 'arm', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'wasm32'];

function platformOf(name) {
  const tokens = name.split('/').pop().split('-');
  const os = tokens.find((t) => OS.includes(t));
  const cpu =
    tokens.find((t) => CPU.includes(t)) ??
    (tokens.includes('eabi') || tokens.includes('gnueabihf') ? 'arm' : undefined);
  const libc =
    os === 'linux'
      ? tokens.includes('musl') || tokens.includes('musleabihf')
        ? 'musl'
        : 'glibc'
      : undefined;
  return { os, cpu, libc };
}

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const added = [];
for (const [where, entry] of Object.entries(lock.packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const nested = `${where}/node_modules/${name}`;
    if (lock.packages[key] || lock.packages[nested]) continue;
    const { os, cpu, libc } = platformOf(name);
    if (!os || !cpu) continue; // not a per-platform binary: leave it to npm
    lock.packages[key] = {
      version: String(spec).replace(/^[\^~=]/, ''),
      cpu: [cpu],
      ...(entry.dev ? { dev: true } : {}),
      ...(libc ? { libc: [libc] } : {}),
      optional: true,
      os: [os],
    };
    added.push(`${name}@${lock.packages[key].version}`);
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(added.length ? `added ${added.length}: ${added.join(' ')}\n` : 'nothing missing\n');
