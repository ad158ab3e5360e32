/** Codes of a campaign: one chosen code, generated batches, imports, the CSV export, revocation. */
import { Readable } from 'node:stream';
import { type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { codesCsv, parseCodeCsv } from '../../formats/code-csv.js';
import type { CodeRecord } from '../../store/rows.js';
import {
  actorOf,
  CampaignId,
  CustomerId,
  component,
  ErrorResponses,
  iso,
  Nullable,
  Page,
  PageQuery,
  page,
  Reason,
  type Routes,
  strict,
  Text,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Code = component(
  'Code',
  Type.Object({
    id: Type.String(),
    campaign_id: CampaignId,
    batch_id: Nullable(Type.String()),
    code: Type.String({ description: 'As shown to customers' }),
    normalized: Type.String({ description: 'Upper case, separators removed: how codes are matched' }),
    kind: Type.Union([Type.Literal('public'), Type.Literal('unique')]),
    max_uses: Nullable(Type.Integer()),
    uses: Type.Integer(),
    customer_id: Nullable(Type.String()),
    status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
    partner: Nullable(Type.String()),
    amount_minor: Nullable(
      Type.Integer({
        description: 'A fixed amount of this code (loyalty coupons); null = the campaign discount',
      }),
    ),
    expires_at: Nullable(
      Type.String({ format: 'date-time', description: "End of this code's own validity, if any" }),
    ),
    created_at: Timestamp,
    revoked_at: Nullable(Timestamp),
  }),
);

export const Partner = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: 'The partner channel the code is issued to: revocable and cappable on its own',
});

export const CodeSpec = Type.Object(
  {
    code: Text(256, 'Letters and digits; case, spaces and - _ . / are ignored when matching'),
    max_uses: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 2_000_000_000 }))),
    customer_id: Type.Optional(Nullable(CustomerId)),
    partner: Type.Optional(Nullable(Partner)),
  },
  strict,
);

const MAX_HTTP_GENERATE = 100_000;
const MAX_HTTP_IMPORT = 10_000;

const CodesCreate = Type.Union([
  Type.Object(
    { ...CodeSpec.properties },
    { ...strict, description: 'One chosen code (no max_uses = public multi-use)' },
  ),
  Type.Object(
    {
      generate: Type.Object(
        {
          count: Type.Integer({
            minimum: 1,
            maximum: MAX_HTTP_GENERATE,
            description: 'Use the CLI for larger batches',
          }),
          prefix: Type.Optional(Type.String({ maxLength: 16, pattern: '^[A-Za-z0-9]*$' })),
          random_length: Type.Optional(
            Type.Integer({ minimum: 8, maximum: 32, default: 12, description: '5 bits each' }),
          ),
          max_uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
          customer_id: Type.Optional(Nullable(CustomerId)),
          partner: Type.Optional(Nullable(Partner)),
        },
        strict,
      ),
    },
    { ...strict, description: 'Generate unique codes with a check symbol' },
  ),
  Type.Object(
    { codes: Type.Array(CodeSpec, { minItems: 1, maxItems: MAX_HTTP_IMPORT }) },
    { ...strict, description: 'Import chosen codes, all or nothing' },
  ),
  Type.Object(
    {
      csv: Type.String({
        minLength: 1,
        maxLength: 2_000_000,
        description:
          'CSV with a header: code[,customer_id][,max_uses][,partner][,status] (status revoked stays revoked)',
      }),
    },
    { ...strict, description: 'Import chosen codes from CSV, all or nothing' },
  ),
]);

const CodesCreated = Type.Union([
  Code,
  Type.Object({
    batch_id: Type.String(),
    count: Type.Integer(),
    prefix: Type.String(),
    random_length: Type.Integer(),
  }),
  Type.Object({ imported: Type.Integer() }),
]);

const Params = Type.Object({ id: CampaignId });

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const specFromBody = (c: StaticDecode<typeof CodeSpec>) => ({
  code: c.code,
  maxUses: c.max_uses,
  customerId: c.customer_id,
  partner: c.partner,
});

function codeJson(c: CodeRecord) {
  return {
    id: c.id,
    campaign_id: c.campaignId,
    batch_id: c.batchId,
    code: c.code,
    normalized: c.normalized,
    kind: c.kind,
    max_uses: c.maxUses,
    uses: c.uses,
    customer_id: c.customerId,
    status: c.status,
    partner: c.partner,
    amount_minor: c.amountMinor,
    expires_at: iso(c.expiresAt),
    created_at: c.createdAt.toISOString(),
    revoked_at: iso(c.revokedAt),
  };
}

const CodeStatsJson = Type.Object({
  code_id: Type.String(),
  campaign_id: CampaignId,
  since: Timestamp,
  redemptions: Type.Integer({ description: 'Redemptions in force in the window' }),
  rolled_back: Type.Integer(),
  discount_minor: Type.Integer({ description: 'Discount of the redemptions in force' }),
  distinct_customers: Type.Integer(),
  distinct_payment_instruments: Type.Integer({
    description: 'Payment fingerprints given in the request context',
  }),
  distinct_devices: Type.Integer(),
  distinct_addresses: Type.Integer({ description: 'Client addresses (IPv6 by /64)' }),
  first_redeemed_at: Nullable(Timestamp),
  last_redeemed_at: Nullable(Timestamp),
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const codeRoutes =
  (app: App): Routes =>
  async (server) => {
    const config = { scopes: ['marketing' as const] };

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
            'codes' in body ? body.codes.map(specFromBody) : parseCodeCsv(body.csv, MAX_HTTP_IMPORT);
          const imported = await app.codes.importCodes(campaignId, specs, actor);
          return reply.status(201).send({ imported });
        }
        const code = await app.codes.createCode(campaignId, specFromBody(body), actor);
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
            strict,
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
          // Streamed page by page: a campaign's codes never all sit in memory. (The typed reply knows only JSON.)
          const csv = Readable.from(codesCsv(app.codes.exportCsv(campaign.id)));
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
      async (request) =>
        codeJson(await app.codes.revoke(request.params.code, actorOf(request), request.body.reason ?? null)),
    );
    server.get(
      '/codes/:code/stats',
      {
        config: { scopes: ['marketing' as const, 'fraud' as const] },
        schema: {
          tags: ['codes'],
          summary: 'Who redeemed a code (M5): distinct customers, payment instruments, devices and addresses',
          params: Type.Object({ code: Type.String({ minLength: 1, maxLength: 256 }) }),
          querystring: Type.Object(
            {
              days: Type.Optional(
                Type.Integer({
                  minimum: 1,
                  maximum: 90,
                  description: 'the window, in days back from now (default 30)',
                }),
              ),
            },
            strict,
          ),
          response: { 200: CodeStatsJson, ...ErrorResponses },
        },
      },
      async (request) => {
        const { code, since, stats } = await app.codes.stats(request.params.code, request.query.days ?? 30);
        return {
          code_id: code.id,
          campaign_id: code.campaignId,
          since: since.toISOString(),
          redemptions: stats.redemptions,
          rolled_back: stats.rolledBack,
          discount_minor: stats.discountMinor,
          distinct_customers: stats.customers,
          distinct_payment_instruments: stats.paymentInstruments,
          distinct_devices: stats.devices,
          distinct_addresses: stats.addresses,
          first_redeemed_at: iso(stats.first),
          last_redeemed_at: iso(stats.last),
        };
      },
    );
  };
