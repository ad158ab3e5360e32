/**
 * Shapes the served OpenAPI document from the route schemas without touching what validates requests:
 * named schemas (shared.ts `component`) become `$ref` components, identical problem answers become
 * response components, and the Idempotency-Key header is declared required where the route requires it.
 */
import type { SwaggerTransform, SwaggerTransformObject } from '@fastify/swagger';
import type { FastifySchema } from 'fastify';
import type { TSchema } from 'typebox';
import { DocumentedIdempotencyHeaders, IdempotencyHeaders, namedComponents } from './shared.js';

/** Carries a schema's name from `transform` to `transformObject`; never left in the document. */
const MARK = 'x-promoguard-component';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `Type.Optional(schema)` is a copy with `~optional` added: the same schema for the document. */
function nameOf(node: Json, names: ReadonlyMap<TSchema, string>): string | undefined {
  const name = names.get(node as TSchema);
  if (name !== undefined || !('~optional' in node)) return name;
  for (const [schema, candidate] of names) {
    const keys = Object.keys(schema);
    if (
      keys.length === Object.keys(node).length - 1 &&
      keys.every((key) => node[key] === (schema as unknown as Json)[key])
    ) {
      return candidate;
    }
  }
  return undefined;
}

/** A copy of a route schema for the document, each named schema in it marked with its name. */
function marked(node: unknown, names: ReadonlyMap<TSchema, string>): unknown {
  if (Array.isArray(node)) return node.map((item) => marked(item, names));
  if (!isObject(node)) return node;
  const copy: Json = {};
  for (const [key, value] of Object.entries(node)) copy[key] = marked(value, names);
  const name = nameOf(node, names);
  if (name !== undefined) copy[MARK] = name;
  return copy;
}

/** @fastify/swagger's per-route `transform`: the route's schema as the document shows it. */
export const documentRoute: SwaggerTransform = ({ schema, url }) => {
  if (!isObject(schema)) return { schema, url };
  const shown =
    schema.headers === IdempotencyHeaders ? { ...schema, headers: DocumentedIdempotencyHeaders } : schema;
  return { schema: marked(shown, namedComponents()) as FastifySchema, url };
};

/** Replaces every marked schema by a `$ref` to its one copy under components.schemas. */
function hoistSchemas(node: unknown, schemas: Json): unknown {
  if (Array.isArray(node)) return node.map((item) => hoistSchemas(item, schemas));
  if (!isObject(node)) return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key !== MARK) out[key] = hoistSchemas(value, schemas);
  }
  const name = node[MARK];
  if (typeof name !== 'string') return out;
  const existing = schemas[name];
  // One name must mean one schema, or a typed client would be told the wrong shape somewhere.
  if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(out)) {
    throw new Error(`two different schemas are named ${name} in the OpenAPI document`);
  }
  schemas[name] = out;
  return { $ref: `#/components/schemas/${name}` };
}

/** Error answers identical across operations become `#/components/responses/Problem<status>`. */
function hoistProblemResponses(paths: Json, responses: Json): void {
  for (const operations of Object.values(paths)) {
    if (!isObject(operations)) continue;
    for (const operation of Object.values(operations)) {
      if (!isObject(operation) || !isObject(operation.responses)) continue;
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400 || !isObject(response) || !isObject(response.content)) continue;
        if (!('application/problem+json' in response.content)) continue;
        const name = `Problem${status}`;
        const existing = responses[name];
        if (existing === undefined) responses[name] = response;
        else if (JSON.stringify(existing) !== JSON.stringify(response)) continue;
        operation.responses[status] = { $ref: `#/components/responses/${name}` };
      }
    }
  }
}

/** @fastify/swagger's `transformObject`: the whole document, components hoisted. */
export const documentObject: SwaggerTransformObject = (document) => {
  if (!('openapiObject' in document)) return document.swaggerObject;
  const openapiObject = document.openapiObject as Json;
  const components = isObject(openapiObject.components) ? openapiObject.components : {};
  const schemas: Json = { ...(isObject(components.schemas) ? components.schemas : {}) };
  const shaped = hoistSchemas(openapiObject, schemas) as Json;
  const responses: Json = {};
  if (isObject(shaped.paths)) hoistProblemResponses(shaped.paths, responses);
  const sorted = (record: Json) =>
    Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
  shaped.components = { ...components, schemas: sorted(schemas), responses: sorted(responses) };
  return shaped;
};
