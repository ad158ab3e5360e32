/**
 * Every error leaves as `application/problem+json` (RFC 9457) with a stable `code` from the closed
 * list in errors.ts and the request id. Unknown errors are logged in full and answered generically.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.js';

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  code: ErrorCode,
  detail?: string,
  extensions: Record<string, unknown> = {},
): FastifyReply {
  const { status, title } = ERROR_CODES[code];
  return reply
    .status(status)
    .type('application/problem+json')
    .send({
      type: `urn:promoguard:problem:${code}`,
      title,
      status,
      code,
      ...(detail === undefined ? {} : { detail }),
      ...extensions,
      request_id: request.id,
    });
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
  const errors = issues.slice(0, 20).map((issue) => {
    const extra = issue.params?.additionalProperties ?? issue.params?.additionalProperty;
    const field = `${part}${issue.instancePath ?? ''}${extra ? `/${String(extra)}` : ''}`;
    return { field, message: issue.message ?? 'is invalid' };
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
};

export function errorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof AppError)
    return sendProblem(reply, request, error.code, error.detail, error.extensions);
  if (error.validation) {
    const { detail, errors } = describeValidation(error);
    return sendProblem(reply, request, 'validation_failed', detail, { errors });
  }
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped) {
    const detail = mapped === 'validation_failed' ? 'the body is not valid JSON' : undefined;
    return sendProblem(reply, request, mapped, detail);
  }
  if (error instanceof SyntaxError)
    return sendProblem(reply, request, 'validation_failed', 'the body is not valid JSON');
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    request.log.info({ err: error }, 'client error without a mapped code');
    return sendProblem(reply, request, 'validation_failed', 'the request is not valid');
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, request, 'internal_error');
}
