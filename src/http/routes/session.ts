/**
 * The console session: sign in (a new session in an HttpOnly cookie), who am I (role, scopes and the
 * CSRF token the console sends back on every change), sign out.
 */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { MAX_PASSWORD_LENGTH } from '../../security/passwords.js';
import type { ConsolePrincipal } from '../../services/console-users.js';
import { ROLES } from '../../services/console-users.js';
import {
  clearSessionCookie,
  fromOwnOrigin,
  readSessionCookie,
  setSessionCookie,
} from '../console-session.js';
import { ErrorResponses, type Routes, StringEnum, strict, Timestamp } from '../shared.js';

export const Email = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: '^[^@\\s]+@[^@\\s]+$',
  description: 'The email address the person signs in with (matched case-insensitively)',
});

export const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH });

const Session = Type.Object({
  user: Type.Object({ id: Type.String(), email: Type.String(), role: StringEnum(ROLES) }),
  scopes: Type.Array(Type.String(), { description: 'The API scopes the role holds' }),
  csrf_token: Type.String({
    description:
      'Send it as X-CSRF-Token on every POST, PUT, PATCH and DELETE made with the session it belongs to',
  }),
  expires_at: Timestamp,
});

const sessionJson = (p: ConsolePrincipal) => ({
  user: { id: p.userId, email: p.email, role: p.role },
  scopes: [...p.scopes],
  csrf_token: p.csrfToken,
  expires_at: p.expiresAt.toISOString(),
});

export const sessionRoutes =
  (app: App): Routes =>
  async (server) => {
    const { config } = app;
    const maxAgeSeconds = config.CONSOLE_SESSION_MAX_HOURS * 3600;
    server.post(
      '/session',
      {
        schema: {
          tags: ['console'],
          summary: 'Sign in to the console: a new session in an HttpOnly cookie',
          security: [],
          body: Type.Object({ email: Email, password: Password }, strict),
          response: { 201: Session, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        // A page on another site must not sign a browser in to an account of the attacker's choosing.
        if (!fromOwnOrigin(request)) throw new AppError('csrf_failed');
        const { sessionId, principal } = await app.consoleUsers.signIn(
          request.body.email,
          request.body.password,
          readSessionCookie(config, request),
        );
        setSessionCookie(config, request, reply, sessionId, maxAgeSeconds);
        reply.header('cache-control', 'no-store');
        return reply.status(201).send(sessionJson(principal));
      },
    );
    server.get(
      '/session',
      {
        config: { session: true },
        schema: {
          tags: ['console'],
          summary: 'The signed-in person: role, scopes, the CSRF token and when the session ends if unused',
          response: { 200: Session, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        return sessionJson(request.consoleUser as ConsolePrincipal);
      },
    );
    server.delete(
      '/session',
      {
        config: { session: true },
        schema: {
          tags: ['console'],
          summary: 'Sign out: the session is revoked on the server and the cookie cleared',
          response: { 204: Type.Null(), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        await app.consoleUsers.signOut(request.consoleUser as ConsolePrincipal);
        clearSessionCookie(config, request, reply);
        return reply.status(204).send(null);
      },
    );
  };
