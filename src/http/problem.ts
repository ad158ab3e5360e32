/**
 * Every error leaves as `application/problem+json` (RFC 9457) with a stable `code` from the closed
 * list in errors.ts and the request id. Unknown errors are logged in full and answered generically.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { isDatabaseUnavailable } from '../store/errors.js';

/**
 * Seconds a caller is asked to wait when the database is unavailable: a restarted or failed-over
 * database serves again within about a second, and a longer wait would only delay checkouts.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 1;

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  code: ErrorCode,
  detail?: string,
  extensions: Record<string, unknown> = {},
): FastifyReply {
  return reply
    .status(ERROR_CODES[code].status)
    .type('application/problem+json')
    .send(problemDocument(code, request.id, detail, extensions));
}

/** The problem document of `code`: also written raw on a connection no request reached. */
export function problemDocument(
  code: ErrorCode,
  requestId: string,
  detail?: string,
  extensions: Record<string, unknown> = {},
): Record<string, unknown> {
  const { status, title } = ERROR_CODES[code];
  return {
    type: `urn:promoguard:problem:${code}`,
    title,
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...extensions,
    request_id: requestId,
  };
}

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function describeValidation(error: FastifyError): {
  detail: string;
  errors: { field: string; message: string }[];
} {
  const issues = (error.validation ?? []) as ValidationIssue[];
  const part = error.validationContext ?? 'body';
  const errors = issues.slice(0, 20).flatMap((issue) => {
    const at = `${part}${issue.instancePath ?? ''}`;
    // A missing property is reported on its parent object; name each missing field itself.
    const missing = issue.params?.requiredProperties ?? issue.params?.missingProperty;
    if (missing !== undefined) {
      return [missing].flat().map((name) => ({ field: `${at}/${String(name)}`, message: 'is required' }));
    }
    const extra = issue.params?.additionalProperties ?? issue.params?.additionalProperty;
    return [{ field: `${at}${extra ? `/${String(extra)}` : ''}`, message: issue.message ?? 'is invalid' }];
  });
  const first = errors[0];
  return { detail: first ? `${first.field} ${first.message}` : `the ${part} is invalid`, errors };
}

/** Fastify's own failures (body parsing, limits) mapped onto our codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_TYPE: 'validation_failed',
  FST_ERR_BAD_URL: 'not_found',
  FST_ERR_ASYNC_CONSTRAINT: 'validation_failed',
  FST_ERR_INVALID_URL: 'not_found',
  FST_ERR_MAX_PARAM_LENGTH: 'not_found',
};

// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is exactly what is looked for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The JSON pointer of the first string (value or key) PostgreSQL cannot store — U+0000, or an
 * unpaired surrogate — or null. Such text is refused at the edge instead of failing in the database.
 * Walked with an explicit stack in document order: the input is untrusted, so its depth must never
 * become the call stack's.
 */
export function findUnstorableText(value: unknown, at: string): string | null {
  // Each entry: a value, its pointer, and the object holding it, whose key is checked as it is reached.
  const pending: [item: unknown, where: string, holder: string | null, key: string][] = [
    [value, at, null, ''],
  ];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, where, holder, key] = next;
    if (holder !== null && UNSTORABLE.test(key)) return `${holder} (a key)`;
    if (typeof item === 'string') {
      if (UNSTORABLE.test(item)) return where;
    } else if (item !== null && typeof item === 'object') {
      const entries = Object.entries(item);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [childKey, child] = entries[i] as [string, unknown];
        pending.push([child, `${where}/${childKey}`, where, childKey]);
      }
    }
  }
  return null;
}

export function errorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof AppError) {
    const wait = error.extensions.retry_after_seconds;
    if (error.code === 'too_many_requests' && typeof wait === 'number')
      reply.header('retry-after', String(wait));
    return sendProblem(reply, request, error.code, error.detail, error.extensions);
  }
  if (isDatabaseUnavailable(error)) {
    // Logged once per outage by the dependency tracker, not once per request.
    request.log.debug({ err: error }, 'database unavailable');
    reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
    return sendProblem(reply, request, 'database_unavailable', undefined, {
      retry_after_seconds: DATABASE_RETRY_AFTER_SECONDS,
    });
  }
  if (error.validation) {
    const { detail, errors } = describeValidation(error);
    return sendProblem(reply, request, 'validation_failed', detail, { errors });
  }
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped) {
    const detail = mapped === 'validation_failed' ? 'the body is not valid JSON' : undefined;
    return sendProblem(reply, request, mapped, detail);
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    request.log.info({ err: error }, 'client error without a mapped code');
    return sendProblem(reply, request, 'validation_failed', 'the request is not valid');
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, request, 'internal_error');
}
