/**
 * The shape of src/, held by the import graph: every folder (and top-level file) has a layer, and an
 * import may only point to a lower layer. Two folders on one layer never import each other, so each
 * holds one kind of thing. The domain imports nothing but itself: no store, HTTP, Redis, clock or
 * package; lib imports only Node's built-ins.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');

/** Layer of each folder or top-level file of src/, bottom (0) to top. */
const LAYERS: Record<string, number> = {
  domain: 0,
  lib: 0,
  'errors.ts': 0,
  store: 1,
  limits: 1,
  security: 1,
  metrics: 1,
  risk: 2,
  events: 2,
  formats: 2,
  'config.ts': 2,
  services: 3,
  'app.ts': 4,
  http: 5,
  simulate: 6,
  'cli.ts': 7,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

const unitOf = (file: string): string => path.relative(SRC, file).split(path.sep)[0] as string;

interface Edge {
  from: string;
  to: string;
  specifier: string;
}

function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

const files = sourceFiles(SRC);
const edges: Edge[] = [];
const external: { from: string; specifier: string }[] = [];
for (const file of files) {
  for (const specifier of importsOf(file)) {
    if (specifier.startsWith('.')) {
      const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
      edges.push({ from: file, to: target, specifier });
    } else {
      external.push({ from: file, specifier });
    }
  }
}

const rel = (file: string) => path.relative(SRC, file);

describe('the import graph of src/', () => {
  it('reads the whole tree (the test is not vacuous)', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(edges.length).toBeGreaterThan(200);
  });

  it('places every folder and top-level file of src/ on a layer', () => {
    const unplaced = [...new Set(files.map(unitOf))].filter((unit) => !(unit in LAYERS));
    expect(unplaced).toEqual([]);
  });

  it('resolves every relative import to a file of src/', () => {
    const dangling = edges
      .filter((e) => !files.includes(e.to))
      .map((e) => `${rel(e.from)} -> ${e.specifier}`);
    expect(dangling).toEqual([]);
  });

  it('has every arrow between folders point down a layer', () => {
    const upOrSideways = edges
      .filter((e) => unitOf(e.from) !== unitOf(e.to))
      .filter((e) => (LAYERS[unitOf(e.to)] ?? 99) >= (LAYERS[unitOf(e.from)] ?? -1))
      .map((e) => `${rel(e.from)} -> ${rel(e.to)}`);
    expect(upOrSideways).toEqual([]);
  });

  it('keeps the domain pure: it imports only the domain, and no package or built-in', () => {
    const domain = files.filter((f) => unitOf(f) === 'domain');
    const out = [
      ...edges.filter((e) => domain.includes(e.from) && unitOf(e.to) !== 'domain').map((e) => e.specifier),
      ...external.filter((e) => domain.includes(e.from)).map((e) => e.specifier),
    ];
    expect(out).toEqual([]);
  });

  it('lets lib use only Node built-ins', () => {
    const packages = external
      .filter((e) => unitOf(e.from) === 'lib' && !e.specifier.startsWith('node:'))
      .map((e) => `${rel(e.from)} -> ${e.specifier}`);
    expect(packages).toEqual([]);
  });

  it('has no import cycle between files', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map(rel).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});

describe("the README's Layout section", () => {
  const readme = readFileSync(path.resolve(SRC, '../README.md'), 'utf8');
  const block = /## Layout\s+```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const listed = [...block.matchAll(/src\/([a-z]+(?:\.ts)?)/g)].map((m) => m[1] as string);

  it('names every folder and top-level file of src/, and nothing that is not there', () => {
    const units = [...new Set(files.map(unitOf))].sort();
    expect([...new Set(listed)].sort()).toEqual(units);
  });
});
