/**
 * The Node.js version package.json promises (and the README states) runs every installed package:
 * no package in the lockfile asks for a newer Node than the lowest one the engines range admits, so
 * `npm ci` on that Node prints no EBADENGINE warning.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const semver = require('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
};

describe('the Node.js version the project promises', () => {
  const lowest = semver.minVersion(pkg.engines.node)?.version ?? '';

  it('is what the README states', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    expect(lowest).toMatch(/^\d+\.\d+\.\d+$/);
    const [major, minor] = lowest.split('.');
    expect(readme).toContain(`Node.js (≥ ${major}.${minor})`);
  });

  it('satisfies the engines range of every package in the lockfile', () => {
    const tooNew = Object.entries(lock.packages)
      .filter(([path]) => path !== '')
      .flatMap(([path, entry]) => {
        const node = entry.engines && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
        return node && !semver.satisfies(lowest, node) ? [`${path} needs node ${node}`] : [];
      });
    expect(tooNew).toEqual([]);
  });
});
