/**
 * A typed client for the Promoguard API: openapi-fetch over the types generated from the served
 * OpenAPI document (schema.d.ts, written by `npm run client:generate`), plus the few things every
 * caller needs: the bearer credential, Idempotency-Keys, typed problem documents, the CSV exports.
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, operations, paths } from './schema.js';

/** A schema of the API by its component name: `Schema<'Campaign'>`, `Schema<'Redemption'>`. */
export type Schema<Name extends keyof components['schemas']> = components['schemas'][Name];

/** Every error answer: RFC 9457 problem details with a stable `code`. */
export type Problem = Schema<'Problem'>;

/** One of the closed list of error codes a problem document carries. */
export type ProblemCode = Problem['code'];

/**
 * The media types a call is typed with: JSON answers and problem documents. A route that can also
 * answer CSV (the code and reconciliation exports) is then typed by its JSON answer; its CSV is read
 * with `parseAs: 'text'` (see `exportCodesCsv`).
 */
export type Media = 'application/json' | 'application/problem+json';

export type PromoguardClient = Client<paths, Media>;

export interface PromoguardClientOptions extends Omit<ClientOptions, 'baseUrl' | 'headers'> {
  /** Where the API is served, e.g. `https://promoguard.internal` (without `/v1`). */
  baseUrl: string;
  /** An API key (`pgk_…`) or, for a storefront, a customer token. */
  credential: string;
  /** Further headers sent with every request. */
  headers?: Record<string, string>;
}

/** A client whose every call is typed by path, method, parameters, body and answer. */
export function createPromoguardClient(options: PromoguardClientOptions): PromoguardClient {
  const { baseUrl, credential, headers = {}, ...rest } = options;
  return createClient<paths, Media>({
    ...rest,
    baseUrl: baseUrl.replace(/\/+$/, ''),
    headers: { ...headers, authorization: `Bearer ${credential}` },
  });
}

/**
 * A fresh Idempotency-Key. Keep it with the order and send the same key when you retry the same
 * redemption, rollback or points change: a repeat returns the first result and changes nothing.
 */
export function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

/** The `params.header` of a retryable write, for `client.POST(…, { params: { header: … } })`. */
export function idempotent(key: string = newIdempotencyKey()): { 'idempotency-key': string } {
  return { 'idempotency-key': key };
}

/** Thrown by `unwrap` with the problem document the API answered. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly status: number;

  constructor(problem: Problem, status: number) {
    super(`${problem.status} ${problem.code}: ${problem.detail ?? problem.title}`);
    this.name = 'ProblemError';
    this.problem = problem;
    this.status = status;
  }
}

/** Whether `value` is a problem document (the error side of a call, or anything caught). */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== 'object' || value === null) return false;
  const { code, status, request_id } = value as Record<string, unknown>;
  return typeof code === 'string' && typeof status === 'number' && typeof request_id === 'string';
}

/**
 * The data of a call, or a ProblemError with its problem document: for callers that would rather
 * throw than branch on `{ data, error }`.
 */
export async function unwrap<Data, Failure>(
  call: Promise<{ data?: Data; error?: Failure; response: Response }>,
): Promise<Data> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    if (isProblem(error)) throw new ProblemError(error, response.status);
    throw new Error(`${response.status} ${response.statusText}: not a problem document`);
  }
  return data as Data;
}

/** Every code of a campaign as the CSV the export serves (a campaign's codes may be many). */
export async function exportCodesCsv(client: PromoguardClient, campaignId: string): Promise<string> {
  const { data, error, response } = await client.GET('/v1/campaigns/{id}/codes', {
    params: { path: { id: campaignId }, query: { format: 'csv' } },
    parseAs: 'text',
  });
  if (error !== undefined) {
    throw isProblem(error) ? new ProblemError(error, response.status) : new Error(`${response.status}`);
  }
  return data;
}
