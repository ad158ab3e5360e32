/** Two-person approval: risky campaign changes waiting for a second key, and its verdict. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { APPROVAL_RULES } from '../../domain/approvals.js';
import type { ApprovalRecord } from '../../store/approvals.js';
import {
  actorOf,
  CampaignId,
  component,
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
  Text,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

export const ApprovalId = Id('apr');
const ApprovalStatus = StringEnum(['pending', 'approved', 'rejected', 'expired'] as const);

export const Approval = component(
  'Approval',
  Type.Object(
    {
      id: ApprovalId,
      kind: StringEnum(['campaign.create', 'campaign.update'] as const, {
        description:
          '`campaign.create`: a new campaign was created as a draft and its activation waits; `campaign.update`: a change of a campaign waits',
      }),
      status: ApprovalStatus,
      target_id: CampaignId,
      target_version: Type.Integer({ description: "The campaign's version when the change was requested" }),
      target_status: Type.String({ description: "The campaign's status when the change was requested" }),
      change: Type.Record(Type.String(), Type.Unknown(), {
        description:
          'The requested change, in the fields of PATCH /v1/campaigns/{id}; applied as is on approval',
      }),
      rules: Type.Array(StringEnum(APPROVAL_RULES), { description: 'The policy rules the change trips' }),
      reason: Nullable(Type.String()),
      requested_by: Type.String({ description: 'The API key that asked for the change' }),
      decided_by: Nullable(Type.String()),
      decided_at: Nullable(Timestamp),
      note: Nullable(Type.String()),
      created_at: Timestamp,
      expires_at: Timestamp,
    },
    { description: 'A campaign change waiting for (or decided by) a second API key' },
  ),
);

const Params = Type.Object({ id: ApprovalId });

const Verdict = Type.Object({ note: Type.Optional(Text(2000, 'Why; kept in the audit trail')) }, strict);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The service's patch field names as the API spells them; metadata keys are the caller's own. */
function changeJson(value: unknown, key?: string): unknown {
  if (key === 'metadata' || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => changeJson(v));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [snake(k), changeJson(v, k)]),
  );
}

export const approvalJson = (a: ApprovalRecord) => ({
  id: a.id,
  kind: a.kind,
  status: a.status,
  target_id: a.targetId,
  target_version: a.targetVersion,
  target_status: a.targetStatus,
  change: changeJson(a.change) as Record<string, unknown>,
  rules: a.rules,
  reason: a.reason,
  requested_by: a.requestedBy,
  decided_by: a.decidedBy,
  decided_at: iso(a.decidedAt),
  note: a.note,
  created_at: a.createdAt.toISOString(),
  expires_at: a.expiresAt.toISOString(),
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const approvalRoutes =
  (app: App): Routes =>
  async (server) => {
    // Campaign owners decide on campaign changes; admin holds every scope.
    const config = { scopes: ['marketing' as const] };

    server.get(
      '/approvals',
      {
        config,
        schema: {
          tags: ['approvals'],
          summary: 'Approvals, newest first (`?status=pending` for the ones waiting)',
          querystring: Type.Object(
            { ...PageQuery, status: Type.Optional(ApprovalStatus), campaign_id: Type.Optional(CampaignId) },
            strict,
          ),
          response: { 200: Page(Approval), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.approvals.list({
          limit: limit + 1,
          before: request.query.cursor,
          status: request.query.status,
          targetId: request.query.campaign_id,
        });
        return page(items, limit, approvalJson);
      },
    );

    server.get(
      '/approvals/:id',
      {
        config,
        schema: {
          tags: ['approvals'],
          summary: 'Read an approval',
          params: Params,
          response: { 200: Approval, ...ErrorResponses },
        },
      },
      async (request) => approvalJson(await app.approvals.get(request.params.id)),
    );

    server.post(
      '/approvals/:id/approve',
      {
        config,
        schema: {
          tags: ['approvals'],
          summary: 'Approve: the change is applied now, as this key, with the requester recorded',
          description:
            'Only a key other than the requester may approve (`409 self_approval_forbidden`). A decided ' +
            'approval is `409 approval_already_decided`, a lapsed one `409 approval_expired`; if the campaign ' +
            'changed since the request (another version or status) it is `409 approval_stale` and nothing ' +
            'is applied. Of two approvals racing, one applies the change and the other gets the 409.',
          params: Params,
          body: Verdict,
          response: { 200: Approval, ...ErrorResponses },
        },
      },
      async (request) => {
        const { approval } = await app.approvals.approve(
          request.params.id,
          actorOf(request),
          request.body.note ?? null,
        );
        return approvalJson(approval);
      },
    );

    server.post(
      '/approvals/:id/reject',
      {
        config,
        schema: {
          tags: ['approvals'],
          summary: 'Reject: the campaign stays as it is (the requester may withdraw their own request)',
          params: Params,
          body: Verdict,
          response: { 200: Approval, ...ErrorResponses },
        },
      },
      async (request) =>
        approvalJson(
          await app.approvals.reject(request.params.id, actorOf(request), request.body.note ?? null),
        ),
    );
  };
