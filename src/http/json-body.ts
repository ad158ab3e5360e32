/**
 * The JSON body parser: Fastify's own (prototype-poisoning protection included), behind a nesting
 * bound. Every later walk over a body (validation, decoding, the unstorable-text scan) then meets at
 * most JSON_MAX_DEPTH levels, so no input can exhaust the stack.
 */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether JSON text nests objects and arrays deeper than `max`, measured in one pass without
 * recursion. Brackets inside strings do not count. Text that is not JSON may be measured loosely,
 * but never below what a parser would reach before it fails: up to the first syntax error both read
 * the same structure, and a closing bracket with nothing open ends the scan (the parse fails there).
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth < 0) return false;
    }
  }
  return false;
}

/** Replaces Fastify's application/json parser with the same one behind the nesting bound. */
export function useBoundedJsonParser(server: FastifyInstance, maxDepth: number): void {
  // 'error' for both: a body with __proto__ or constructor.prototype is refused, as Fastify does by default.
  const parseJson = server.getDefaultJsonParser('error', 'error');
  server.removeContentTypeParser('application/json');
  server.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (nestsDeeperThan(text, maxDepth)) {
      const message = `must not nest objects and arrays deeper than ${maxDepth} levels`;
      done(
        new AppError('validation_failed', `body ${message}`, { errors: [{ field: 'body', message }] }),
        undefined,
      );
      return;
    }
    parseJson(request, text, done);
  });
}
