/**
 * The nesting bound and the unstorable-text scan over untrusted bodies: the bound measures what a
 * parser would build (brackets in strings do not count), and neither walk uses the call stack, so
 * no depth of input can overflow it.
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nestsDeeperThan } from '../../src/http/json-body.js';
import { findUnstorableText } from '../../src/http/problem.js';

/** The nesting of a parsed value, counted recursively (test inputs are shallow). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Object.values(value).map(depthOf);
  return 1 + Math.max(0, ...children);
}

describe('the JSON nesting bound', () => {
  it('agrees with the depth of the parsed value, for any JSON and any bound', () => {
    const text = fc.oneof(
      fc.json({ maxDepth: 12 }),
      fc.jsonValue({ maxDepth: 12 }).map((v) => JSON.stringify(v, null, 1) ?? 'null'),
    );
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 14 }), (json, max) => {
        expect(nestsDeeperThan(json, max)).toBe(depthOf(JSON.parse(json)) > max);
      }),
      { seed: 16, numRuns: 2000 },
    );
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(nestsDeeperThan('{"a":"[[[[{{{{"}', 1)).toBe(false);
    expect(nestsDeeperThan('["\\"[[[[", "\\\\", [1]]', 2)).toBe(false);
    expect(nestsDeeperThan('["\\\\", [[1]]]', 2)).toBe(true);
  });

  it('measures a million levels without recursion', () => {
    expect(nestsDeeperThan('['.repeat(1_000_000), 32)).toBe(true);
    expect(nestsDeeperThan(`${'['.repeat(32)}${']'.repeat(32)}`, 32)).toBe(false);
    expect(nestsDeeperThan(`${'['.repeat(33)}${']'.repeat(33)}`, 32)).toBe(true);
  });

  it('never measures less than a parser reaches, even past a syntax error', () => {
    // Closers first: the parse fails at once, so nothing deeper is ever built.
    expect(nestsDeeperThan(`${']'.repeat(100)}${'['.repeat(100)}`, 32)).toBe(false);
    expect(() => JSON.parse(`${']'.repeat(100)}${'['.repeat(100)}`)).toThrow();
    // Openers before the error count.
    expect(nestsDeeperThan(`${'['.repeat(40)}}`, 32)).toBe(true);
  });
});

describe('the unstorable-text scan', () => {
  it('names the first NUL or lone surrogate in document order, in values and in keys', () => {
    expect(findUnstorableText({ a: 'ok', b: ['x', 'y\u0000'] }, 'body')).toBe('body/b/1');
    expect(findUnstorableText({ a: { '\uD800': 1 }, '\u0000': 2 }, 'body')).toBe('body/a (a key)');
    expect(findUnstorableText({ a: 'fine', b: { c: '\uDC00' } }, 'body')).toBe('body/b/c');
    expect(findUnstorableText({ a: '🎉', b: ['x'] }, 'body')).toBeNull();
  });

  it('walks a value nested far past any call stack', () => {
    let deep: unknown = 'a\u0000b';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findUnstorableText(deep, 'body')).toBe(`body${'/0'.repeat(200_000)}`);
  });
});
