/** Liveness and readiness, open to anyone (no key). */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { ping } from '../../store/connect.js';
import { Problem, type Routes } from '../shared.js';

export const healthRoutes =
  (app: App): Routes =>
  async (server) => {
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
          response: { 200: Type.Object({ status: Type.String(), database: Type.String() }), 503: Problem },
        },
      },
      async () => {
        try {
          await ping(app.db);
        } catch {
          throw new AppError('not_ready', 'the database does not answer');
        }
        return { status: 'ready', database: app.backend };
      },
    );
  };
