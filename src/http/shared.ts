/**
 * The building blocks every resource module shares: how schemas validate and decode requests, schema
 * helpers, ids, money, timestamps, pages, the problem document and error responses, the
 * Idempotency-Key header, audit reasons.
 */
import type {
  FastifyPluginAsync,
  FastifySchemaCompiler,
  FastifySchemaValidationError,
  FastifyTypeProvider,
  RawServerDefault,
} from 'fastify';
import {
  IsArray,
  IsCodec,
  IsObject,
  IsUnion,
  type StaticDecode,
  type StaticEncode,
  type TSchema,
  Type,
} from 'typebox';
import { Compile } from 'typebox/compile';
import { HasCodec, Value } from 'typebox/value';
import { MAX_AMOUNT_MINOR } from '../domain/money.js';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.js';

// ---------------------------------------------------------------------------------------------------
// Validation and decoding
// ---------------------------------------------------------------------------------------------------

/** Handlers see requests as their schemas decode them (a timestamp is a Date); replies are plain JSON. */
export interface DecodingTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? StaticDecode<this['schema']> : unknown;
  serializer: this['schema'] extends TSchema ? StaticEncode<this['schema']> : unknown;
}

/** A resource module: its routes, registered under /v1 (health at the root). */
export type Routes = FastifyPluginAsync<Record<never, never>, RawServerDefault, DecodingTypeProvider>;

type Decoder = (value: unknown) => unknown;

/**
 * The schema's codecs applied to a value that passed it, or null when it has none. Planned once per
 * schema: TypeBox's own DecodeUnsafe re-sorts every union on each call, a cost the checkout path pays.
 */
function decoderOf(schema: TSchema): Decoder | null {
  if (IsCodec(schema)) return (value) => schema['~codec'].decode(value);
  if (IsObject(schema)) {
    const fields = Object.entries(schema.properties).flatMap(([key, property]) => {
      const decode = decoderOf(property);
      return decode ? [[key, decode] as const] : [];
    });
    if (fields.length === 0) return null;
    return (value) => {
      const object = value as Record<string, unknown>;
      for (const [key, decode] of fields) {
        if (Object.hasOwn(object, key) && object[key] !== undefined) object[key] = decode(object[key]);
      }
      return object;
    };
  }
  if (IsUnion(schema)) {
    const variants = schema.anyOf.map((variant) => ({ check: Compile(variant), decode: decoderOf(variant) }));
    if (variants.every((variant) => variant.decode === null)) return null;
    return (value) => {
      const match = variants.find((variant) => variant.check.Check(value));
      return match?.decode ? match.decode(value) : value;
    };
  }
  if (IsArray(schema)) {
    const decode = decoderOf(schema.items);
    return decode && ((value) => (value as unknown[]).map(decode));
  }
  // A codec this planner cannot reach would leave a string where the handler's type says Date.
  if (HasCodec(schema)) throw new Error('a codec inside a record, tuple or intersect schema is not decoded');
  return null;
}

/**
 * Validates each request part, then decodes it, so the handler receives what DecodingTypeProvider
 * promises. Every codec's decode is total over valid input: the checks live in the schema.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  const decode = decoderOf(schema);
  return (value) => {
    // Path, query and headers arrive as text to convert; a JSON body is judged as sent.
    const converted = httpPart === 'body' ? value : Value.Convert(schema, value);
    if (!validator.Check(converted)) {
      return { error: validator.Errors(converted) as FastifySchemaValidationError[] };
    }
    return { value: decode ? decode(converted) : converted };
  };
};

// ---------------------------------------------------------------------------------------------------
// Schema helpers
// ---------------------------------------------------------------------------------------------------

export const strict = { additionalProperties: false } as const;

const componentNames = new Map<TSchema, string>();

/**
 * Names a schema shared by several routes: the served document holds it once under
 * `components.schemas` and refers to it by `$ref` (see openapi.ts), so a typed client gets one type for
 * it. Validation is untouched: routes keep the very schema object.
 */
export function component<T extends TSchema>(name: string, schema: T): T {
  componentNames.set(schema, name);
  return schema;
}

/** The named schemas, for the document (openapi.ts). */
export const namedComponents = (): ReadonlyMap<TSchema, string> => componentNames;

/** A string that is one of `values`, typed as their union (`Type.Literal` over `.map` would lose it). */
export const StringEnum = <const T extends readonly string[]>(
  values: T,
  options: { description?: string } = {},
) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Text = (maxLength: number, description?: string) =>
  Type.String({
    minLength: 1,
    maxLength,
    pattern: '^[^\\u0000-\\u001f]*$',
    ...(description ? { description } : {}),
  });

// ---------------------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------------------

/** An id we issue: its kind's prefix and a ULID, so a malformed or cross-kind id is a 400, never a lookup. */
export const Id = (prefix: string) => Type.String({ pattern: `^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$` });
export const CampaignId = Id('cmp');
export const RedemptionId = Id('red');
export const DecisionId = Id('dec');
export const CustomerId = Text(128, 'Your id of the customer');

// ---------------------------------------------------------------------------------------------------
// Money and time
// ---------------------------------------------------------------------------------------------------

export const AmountMinor = Type.Integer({
  minimum: 0,
  maximum: MAX_AMOUNT_MINOR,
  description: 'An amount in minor units of the currency (cents, yen): an integer, never a fraction.',
});
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code, e.g. USD' });
const storable = (text: string) => {
  const year = new Date(text).getUTCFullYear();
  return year >= 1 && year <= 9999;
};

/**
 * An instant, decoded to a Date. `format: date-time` alone admits leap seconds, RFC 9557 `[zone]`
 * suffixes and year 0000 (also once an offset is applied), which neither Date nor PostgreSQL holds.
 */
export const Timestamp = Type.Codec(
  Type.Refine(
    Type.String({ format: 'date-time', description: 'UTC instant, RFC 3339' }),
    storable,
    () => 'must be an RFC 3339 date-time from year 1 to 9999',
  ),
)
  .Decode((text) => new Date(text))
  .Encode((date) => date.toISOString());

export const iso = (d: Date | null) => (d === null ? null : d.toISOString());

// ---------------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------------

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    next_cursor: Nullable(
      Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' }),
    ),
  });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z]+_[0-9A-Z]{26}$' })),
};

/** A cursor that is a row number (points movements, list entries) rather than an id. */
export const NumericCursor = Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }));

/**
 * A page of `limit` items. Callers fetch `limit + 1`: the extra item only says that more follow, so the
 * last page has a null cursor even when it is full.
 */
export function page<T, J, C = string>(
  items: T[],
  limit: number,
  toJson: (item: T) => J,
  cursorOf: (item: T) => C = (item) => (item as { id: C }).id,
) {
  const shown = items.slice(0, limit);
  const last = shown[shown.length - 1];
  return {
    data: shown.map(toJson),
    next_cursor: items.length > limit && last !== undefined ? cursorOf(last) : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

export const Problem = component(
  'Problem',
  Type.Object(
    {
      type: Type.String(),
      title: Type.String(),
      status: Type.Integer(),
      code: StringEnum(Object.keys(ERROR_CODES) as ErrorCode[]),
      detail: Type.Optional(Type.String()),
      request_id: Type.String(),
    },
    { additionalProperties: true, description: 'RFC 9457 problem details' },
  ),
);

/** A problem response as it leaves (errorHandler answers `application/problem+json`), naming its codes. */
export function problemResponse(status: number) {
  const codes = Object.entries(ERROR_CODES)
    .filter(([, error]) => error.status === status)
    .map(([code]) => `\`${code}\``);
  return {
    description: `Problem document; \`code\` is one of ${codes.join(', ')}`,
    content: { 'application/problem+json': { schema: Problem } },
  };
}

/** The error answers any /v1 route may give: bad input, auth, missing, conflict, refusal, limits, outage. */
export const ErrorResponses = {
  400: problemResponse(400),
  401: problemResponse(401),
  403: problemResponse(403),
  404: problemResponse(404),
  409: problemResponse(409),
  422: problemResponse(422),
  428: problemResponse(428),
  429: problemResponse(429),
  503: problemResponse(503),
};

// ---------------------------------------------------------------------------------------------------
// Retryable writes and the audit log
// ---------------------------------------------------------------------------------------------------

const IdempotencyKey = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'Printable ASCII; a repeat with the same key and request returns the first result',
});

export const IdempotencyHeaders = Type.Object({ 'idempotency-key': Type.Optional(IdempotencyKey) });

/** What the document declares for IdempotencyHeaders: the header is required (requireIdempotencyKey). */
export const DocumentedIdempotencyHeaders = Type.Object({ 'idempotency-key': IdempotencyKey });

/** Retryable writes need the header; the schema leaves it optional so its absence gets this clear code. */
export function requireIdempotencyKey(key: string | undefined): string {
  if (!key) throw new AppError('idempotency_key_required');
  return key;
}

/** An optional reason for an operator's action (pause, revoke, rollback). */
export const Reason = Type.Object({ reason: Type.Optional(Text(500, 'Why; kept in the audit log')) }, strict);

/** The reason a defense needs (lists, bulk revocation, throttles, partner caps). */
export const Why = Type.String({ minLength: 1, maxLength: 500, description: 'Why; kept in the audit log' });

/** Who made a change, for the audit log: the signed-in console user's id, or the API key's id. */
export const actorOf = (request: { apiKey: { id: string } | null; consoleUser: { userId: string } | null }) =>
  request.consoleUser?.userId ?? request.apiKey?.id ?? 'unknown';
