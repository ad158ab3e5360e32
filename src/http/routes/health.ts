/** Liveness and readiness, open to anyone (no key). */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { ping } from '../../store/connect.js';
import { problemResponse, type Routes } from '../shared.js';

/**
 * How long /readyz waits for PostgreSQL. A probe that hangs as long as a frozen database does tells
 * the load balancer nothing; one that answers 503 within a second lets it move traffic away.
 */
export const READINESS_TIMEOUT_MS = 1_000;

/**
 * One ping at a time, shared by the probes that arrive while it runs: probes from several balancers
 * during a freeze must not take one pooled connection each.
 */
function readinessCheck(app: App): () => Promise<boolean> {
  let pending: Promise<boolean> | null = null;
  return () => {
    pending ??= ping(app.db)
      .then(
        () => true,
        () => false,
      )
      .finally(() => {
        pending = null;
      });
    // PGlite runs in this process, one statement at a time: a slow answer there is a busy database,
    // not a lost one, and it is waited for.
    if (app.backend === 'pglite') return pending;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), READINESS_TIMEOUT_MS);
    });
    return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
  };
}

export const healthRoutes =
  (app: App): Routes =>
  async (server) => {
    const ready = readinessCheck(app);
    const Status = Type.Object({ status: Type.String() });
    server.get(
      '/healthz',
      { schema: { tags: ['health'], summary: 'The process is up', security: [], response: { 200: Status } } },
      async () => ({ status: 'ok' }),
    );
    server.get(
      '/readyz',
      {
        schema: {
          tags: ['health'],
          summary: 'The database answers',
          security: [],
          response: {
            200: Type.Object({ status: Type.String(), database: Type.String() }),
            503: problemResponse(503),
          },
        },
      },
      async () => {
        if (!(await ready())) throw new AppError('not_ready', 'the database does not answer');
        return { status: 'ready', database: app.backend };
      },
    );
  };
