/**
 * Console users: an admin creates them, lists them, changes a role, disables one or sets a new
 * password; a signed-in person changes their own password. Never a password or its hash in an answer.
 */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import type { ConsolePrincipal } from '../../services/console-users.js';
import { ROLE_SCOPES, ROLES } from '../../services/console-users.js';
import type { ConsoleUserRecord } from '../../store/console-users.js';
import {
  actorOf,
  ErrorResponses,
  Id,
  iso,
  Nullable,
  Page,
  PageQuery,
  page,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';
import { Email, Password } from './session.js';

const ConsoleUser = Type.Object({
  id: Type.String(),
  email: Type.String(),
  role: StringEnum(ROLES),
  scopes: Type.Array(Type.String()),
  disabled: Type.Boolean(),
  locked_until: Nullable(Timestamp),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const userJson = (u: ConsoleUserRecord) => ({
  id: u.id,
  email: u.email,
  role: u.role,
  scopes: [...ROLE_SCOPES[u.role]],
  disabled: u.disabledAt !== null,
  locked_until: iso(u.lockedUntil),
  created_at: u.createdAt.toISOString(),
  updated_at: u.updatedAt.toISOString(),
});

const Role = StringEnum(ROLES, { description: 'marketing, fraud, on_call, finance or admin' });

export const consoleUserRoutes =
  (app: App): Routes =>
  async (server) => {
    const admin = { scopes: ['admin' as const] };
    server.post(
      '/console-users',
      {
        config: admin,
        schema: {
          tags: ['console'],
          summary: 'Create a console user with a role and a first password',
          body: Type.Object({ email: Email, role: Role, password: Password }, strict),
          response: { 201: ConsoleUser, ...ErrorResponses },
        },
      },
      async (request, reply) =>
        reply.status(201).send(userJson(await app.consoleUsers.create(request.body, actorOf(request)))),
    );
    server.get(
      '/console-users',
      {
        config: admin,
        schema: {
          tags: ['console'],
          summary: 'List console users, oldest first',
          querystring: Type.Object(PageQuery, strict),
          response: { 200: Page(ConsoleUser), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const users = await app.consoleUsers.list({ limit: limit + 1, after: request.query.cursor });
        return page(users, limit, userJson);
      },
    );
    server.get(
      '/console-users/:id',
      {
        config: admin,
        schema: {
          tags: ['console'],
          summary: 'One console user',
          params: Type.Object({ id: Id('usr') }),
          response: { 200: ConsoleUser, ...ErrorResponses },
        },
      },
      async (request) => userJson(await app.consoleUsers.get(request.params.id)),
    );
    server.patch(
      '/console-users/:id',
      {
        config: admin,
        schema: {
          tags: ['console'],
          summary:
            'Change the role, disable or enable, unlock after failed sign-ins, or set a new password (disabling and a new password end every session of the user)',
          params: Type.Object({ id: Id('usr') }),
          body: Type.Object(
            {
              role: Type.Optional(Role),
              disabled: Type.Optional(Type.Boolean()),
              password: Type.Optional(Password),
              unlock: Type.Optional(
                Type.Literal(true, {
                  description: 'Lift a lock after failed sign-ins now, and reset the count of failures',
                }),
              ),
            },
            { ...strict, minProperties: 1 },
          ),
          response: { 200: ConsoleUser, ...ErrorResponses },
        },
      },
      async (request) =>
        userJson(await app.consoleUsers.update(request.params.id, request.body, actorOf(request))),
    );
    server.post(
      '/console-users/me/password',
      {
        config: { session: true },
        schema: {
          tags: ['console'],
          summary: 'Change your own password (every other session of yours ends)',
          body: Type.Object({ current_password: Password, new_password: Password }, strict),
          response: { 204: Type.Null(), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        await app.consoleUsers.changePassword(
          request.consoleUser as ConsolePrincipal,
          request.body.current_password,
          request.body.new_password,
        );
        return reply.status(204).send(null);
      },
    );
  };
