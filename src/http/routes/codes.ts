import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { AppError } from '../../errors.js';
import { codesCsv, parseCodeCsv } from '../../formats/code-csv.js';
import { actorOf, codeJson, page } from '../present.js';
import {
  CampaignId,
  Code,
  CodesCreate,
  CodesCreated,
  ErrorResponses,
  MAX_HTTP_IMPORT,
  Page,
  PageQuery,
  Reason,
} from '../schemas.js';

export const codeRoutes =
  (app: App): FastifyPluginAsyncTypebox =>
  async (server) => {
    const config = { scopes: ['marketing' as const] };
    const Params = Type.Object({ id: CampaignId });

    server.post(
      '/campaigns/:id/codes',
      {
        config,
        schema: {
          tags: ['codes'],
          summary: 'Add codes: one chosen code, a generated batch, or an import (JSON list or CSV)',
          description:
            'Generated codes are PREFIX + random symbols from an alphabet without 0/O/1/I + one Luhn mod 32 ' +
            'check symbol; at least 40 random bits. Imports are all or nothing.',
          params: Params,
          body: CodesCreate,
          response: { 201: CodesCreated, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const actor = actorOf(request);
        const campaignId = request.params.id;
        if ('generate' in body) {
          const g = body.generate;
          const result = await app.codes.generate(
            campaignId,
            {
              count: g.count,
              prefix: g.prefix,
              randomLength: g.random_length,
              maxUses: g.max_uses,
              customerId: g.customer_id,
              partner: g.partner,
            },
            actor,
            { atomic: true },
          );
          return reply.status(201).send({
            batch_id: result.batchId,
            count: result.count,
            prefix: result.pattern.prefix,
            random_length: result.pattern.randomLength,
          });
        }
        if ('codes' in body || 'csv' in body) {
          const specs =
            'codes' in body
              ? body.codes.map((c) => ({
                  code: c.code,
                  maxUses: c.max_uses,
                  customerId: c.customer_id,
                  partner: c.partner,
                }))
              : parseCodeCsv(body.csv, MAX_HTTP_IMPORT);
          const imported = await app.codes.importCodes(campaignId, specs, actor);
          return reply.status(201).send({ imported });
        }
        const code = await app.codes.createCode(
          campaignId,
          { code: body.code, maxUses: body.max_uses, customerId: body.customer_id, partner: body.partner },
          actor,
        );
        return reply.status(201).send(codeJson(code));
      },
    );

    server.get(
      '/campaigns/:id/codes',
      {
        config,
        schema: {
          tags: ['codes'],
          summary: 'List codes (JSON pages) or export them all (format=csv)',
          params: Params,
          querystring: Type.Object(
            { ...PageQuery, format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])) },
            { additionalProperties: false },
          ),
          response: {
            200: {
              description: 'A page of codes, or with format=csv every code as text/csv',
              content: {
                'application/json': { schema: Page(Code) },
                'text/csv': { schema: Type.String() },
              },
            },
            ...ErrorResponses,
          },
        },
      },
      async (request, reply) => {
        const campaign = await app.campaigns.get(request.params.id);
        if (request.query.format === 'csv') {
          reply.header('content-disposition', `attachment; filename="${campaign.id}-codes.csv"`);
          // Streamed page by page: a million codes never sit in memory. (The typed reply knows only JSON.)
          const csv = Readable.from(codesCsv(app.codes.iterate(campaign.id)));
          return reply.type('text/csv; charset=utf-8').send(csv as unknown as string);
        }
        const limit = request.query.limit ?? 50;
        const items = await app.codes.list(campaign.id, { limit: limit + 1, after: request.query.cursor });
        return reply.type('application/json').send(page(items, limit, codeJson));
      },
    );

    server.post(
      '/codes/:code/revoke',
      {
        config,
        schema: {
          tags: ['codes'],
          summary: 'Revoke a code: refused from the next request on; repeating is harmless',
          params: Type.Object({ code: Type.String({ minLength: 1, maxLength: 256 }) }),
          body: Reason,
          response: { 200: Code, ...ErrorResponses },
        },
      },
      async (request) => {
        if (request.params.code.length === 0) throw new AppError('code_not_found');
        return codeJson(
          await app.codes.revoke(request.params.code, actorOf(request), request.body.reason ?? null),
        );
      },
    );
  };
