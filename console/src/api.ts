/**
 * The console's one way to the API: the typed client (openapi-fetch over the generated OpenAPI
 * types) with the session cookie. Every change carries the session's CSRF token; an answer 401 means
 * the session is over, and the app goes back to sign-in.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { Media, Problem, paths, Schema } from '../../clients/typescript/src/index.ts';
import { isProblem } from '../../clients/typescript/src/index.ts';

export type { Problem, Schema };

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

let csrfToken: string | null = null;
let onSessionOver: () => void = () => {};

/** Set by the session holder: the token of the session the cookie names. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** What to do when the API says the session is over (idle, absolute timeout, revoked). */
export function onUnauthorized(handler: () => void): void {
  onSessionOver = handler;
}

const session: Middleware = {
  onRequest({ request }) {
    if (WRITES.has(request.method) && csrfToken) request.headers.set('x-csrf-token', csrfToken);
    return request;
  },
  onResponse({ response, schemaPath }) {
    // Signing in with a wrong password is a 401 too; that one is the form's to show.
    if (response.status === 401 && schemaPath !== '/v1/session') onSessionOver();
    return response;
  },
};

export const api = createClient<paths, Media>({
  baseUrl: window.location.origin,
  credentials: 'same-origin',
});
api.use(session);

/** A problem document's message for a person: the detail when the API gave one, else the title. */
export function problemMessage(error: unknown): string {
  if (isProblem(error)) return error.detail ?? error.title;
  if (error instanceof Error) return error.message;
  return 'The service did not answer; check your connection and try again.';
}

/** The field errors of a validation problem, keyed by field as the API names it (`body/name`). */
export function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isProblem(error)) return out;
  const errors = (error as Problem & { errors?: { field?: unknown; message?: unknown }[] }).errors;
  for (const item of Array.isArray(errors) ? errors : []) {
    if (typeof item.field === 'string' && typeof item.message === 'string') out[item.field] = item.message;
  }
  return out;
}

/** Throws the answered problem (for the callers that show it) or returns the data. */
export async function need<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw new ApiError(error, response.status);
  return data as T;
}

export class ApiError extends Error {
  readonly problem: unknown;
  readonly status: number;
  constructor(problem: unknown, status: number) {
    super(problemMessage(problem));
    this.problem = problem;
    this.status = status;
  }
}
