/** API keys: created with their scopes, listed without their secrets, revoked; both changes audited. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { SCOPES } from '../../services/api-keys.js';
import type { ApiKeyRecord } from '../../store/api-keys.js';
import {
  actorOf,
  component,
  ErrorResponses,
  Id,
  iso,
  Nullable,
  Reason,
  type Routes,
  StringEnum,
  strict,
  Timestamp,
} from '../shared.js';

const ApiKey = component(
  'ApiKey',
  Type.Object({
    id: Type.String(),
    name: Type.String(),
    hint: Type.String({ description: 'The last four characters, to tell keys apart' }),
    scopes: Type.Array(Type.String()),
    created_at: Timestamp,
    revoked_at: Nullable(Timestamp),
  }),
);

const keyJson = (k: ApiKeyRecord) => ({
  id: k.id,
  name: k.name,
  hint: `…${k.keyHint}`,
  scopes: k.scopes,
  created_at: k.createdAt.toISOString(),
  revoked_at: iso(k.revokedAt),
});

export const apiKeyRoutes =
  (app: App): Routes =>
  async (server) => {
    const admin = { scopes: ['admin' as const] };
    server.post(
      '/api-keys',
      {
        config: admin,
        schema: {
          tags: ['admin'],
          summary: 'Create an API key; the secret is in this response only',
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 200 }),
              scopes: Type.Array(StringEnum(SCOPES), {
                minItems: 1,
                maxItems: SCOPES.length,
                uniqueItems: true,
              }),
            },
            strict,
          ),
          response: { 201: Type.Object({ ...ApiKey.properties, secret: Type.String() }), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const { key, secret } = await app.apiKeys.create(
          request.body.name,
          request.body.scopes,
          actorOf(request),
        );
        return reply.status(201).send({ ...keyJson(key), secret });
      },
    );
    server.get(
      '/api-keys',
      {
        config: admin,
        schema: {
          tags: ['admin'],
          summary: 'List API keys (never their secrets)',
          response: { 200: Type.Object({ data: Type.Array(ApiKey) }), ...ErrorResponses },
        },
      },
      async () => ({ data: (await app.apiKeys.list()).map(keyJson) }),
    );
    server.post(
      '/api-keys/:id/revoke',
      {
        config: admin,
        schema: {
          tags: ['admin'],
          summary: 'Revoke an API key (every node refuses it within 5 seconds)',
          params: Type.Object({ id: Id('key') }),
          body: Reason,
          response: { 200: ApiKey, ...ErrorResponses },
        },
      },
      async (request) => {
        // Revoking twice is harmless: the second call finds it revoked and answers the same.
        await app.apiKeys.revoke(request.params.id, actorOf(request), request.body.reason ?? null);
        const key = (await app.apiKeys.list()).find((k) => k.id === request.params.id);
        if (!key) throw new AppError('api_key_not_found');
        return keyJson(key);
      },
    );
  };
