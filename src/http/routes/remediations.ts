/**
 * Automated remediation: the policies (what to do on which alert) and the remediations they applied,
 * which on-call reads and lifts. Policy values are checked by the service, so a wrong kind, action,
 * mode, scope, duration or parameter answers 422 `remediation_policy_invalid` with a stable `reason`.
 */
import { type StaticDecode, Type } from 'typebox';
import type { App } from '../../app.js';
import { ALERT_KINDS, ALERT_SCOPE_TYPES, ALERT_SEVERITIES } from '../../domain/alerts.js';
import {
  CALLER_CLASSES,
  MAX_DURATION_SECONDS,
  POLICY_SCOPES,
  REMEDIATION_ACTIONS,
  REMEDIATION_MODES,
  type RemediationPolicy,
} from '../../domain/remediation.js';
import type { PolicyPatch } from '../../services/remediations.js';
import type { Remediation } from '../../store/remediations.js';
import {
  actorOf,
  component,
  ErrorResponses,
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
  Why,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const PolicyId = Type.String({ pattern: '^rpol_[0-9A-Za-z_]{1,64}$' });
const RemediationId = Type.String({ pattern: '^rem_[0-9A-HJKMNP-TV-Z]{26}$' });

const oneOf = (values: readonly string[]) => `one of ${values.map((v) => `\`${v}\``).join(', ')}`;

const Scope = Type.Object(
  {
    type: Type.String({ maxLength: 20, description: oneOf(POLICY_SCOPES) }),
    campaign_id: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
    partner: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100 }))),
  },
  {
    ...strict,
    description:
      'Which alerts the policy covers: `global`, one `campaign` (campaign_id) or one `partner` (partner, optionally ' +
      'campaign_id). The most specific policies covering an alert replace the broader ones.',
  },
);

const Params = Type.Record(Type.String({ maxLength: 40 }), Type.Unknown(), {
  maxProperties: 10,
  description:
    'By action: throttle {per_minute}; require_step_up and hold_for_review {applies_to: ' +
    `[${CALLER_CLASSES.join(', ')}], new_account_hours}; tighten_guessing {failures_per_caller, window_seconds}; ` +
    'pause and revoke_unredeemed none',
});

const PolicyFields = {
  name: Text(120),
  scope: Type.Optional(Scope),
  alert_kind: Type.String({ maxLength: 40, description: oneOf(ALERT_KINDS) }),
  alert_scopes: Type.Optional(
    Nullable(
      Type.Array(Type.String({ maxLength: 20 }), {
        maxItems: 10,
        description: `The alert scopes it reacts to, ${oneOf(ALERT_SCOPE_TYPES)}; null = any`,
      }),
    ),
  ),
  min_severity: Type.Optional(
    Nullable(Type.String({ maxLength: 20, description: `${oneOf(ALERT_SEVERITIES)}; null = any` })),
  ),
  action: Type.String({ maxLength: 40, description: oneOf(REMEDIATION_ACTIONS) }),
  params: Type.Optional(Params),
  mode: Type.String({ maxLength: 20, description: oneOf(REMEDIATION_MODES) }),
  duration_seconds: Type.Integer({
    description: `How long each remediation it applies holds before it expires (60 to ${MAX_DURATION_SECONDS})`,
  }),
  enabled: Type.Optional(Type.Boolean()),
};

const PolicyCreate = Type.Object(PolicyFields, strict);
const PolicyUpdate = Type.Object(
  {
    name: Type.Optional(PolicyFields.name),
    scope: PolicyFields.scope,
    alert_kind: Type.Optional(PolicyFields.alert_kind),
    alert_scopes: PolicyFields.alert_scopes,
    min_severity: PolicyFields.min_severity,
    action: Type.Optional(PolicyFields.action),
    params: PolicyFields.params,
    mode: Type.Optional(PolicyFields.mode),
    duration_seconds: Type.Optional(PolicyFields.duration_seconds),
    enabled: PolicyFields.enabled,
  },
  { ...strict, minProperties: 1 },
);

const Policy = component(
  'RemediationPolicy',
  Type.Object({
    id: PolicyId,
    name: Type.String(),
    scope: Type.Object({
      type: StringEnum(POLICY_SCOPES),
      campaign_id: Nullable(Type.String()),
      partner: Nullable(Type.String()),
    }),
    alert_kind: StringEnum(ALERT_KINDS),
    alert_scopes: Nullable(Type.Array(Type.String())),
    min_severity: Nullable(StringEnum(ALERT_SEVERITIES)),
    action: StringEnum(REMEDIATION_ACTIONS),
    params: Type.Record(Type.String(), Type.Unknown()),
    mode: StringEnum(REMEDIATION_MODES),
    duration_seconds: Type.Integer(),
    enabled: Type.Boolean(),
    pack: Nullable(Type.String({ description: '`default` for a shipped policy' })),
    version: Type.Integer(),
    created_by: Type.String(),
    created_at: Timestamp,
    updated_at: Timestamp,
  }),
);

const RemediationJson = component(
  'Remediation',
  Type.Object({
    id: RemediationId,
    policy_id: Type.String(),
    alert_id: Type.String(),
    alert_kind: Type.String(),
    action: StringEnum(REMEDIATION_ACTIONS),
    target: Type.Object({
      type: StringEnum(['campaign', 'code', 'partner', 'batch'] as const),
      campaign_id: Nullable(Type.String()),
      partner: Nullable(Type.String()),
      batch_id: Nullable(Type.String()),
      code_id: Nullable(Type.String()),
    }),
    params: Type.Record(Type.String(), Type.Unknown()),
    dry_run: Type.Boolean({ description: 'Recorded what it would do and changed nothing' }),
    status: StringEnum(['active', 'lifted', 'expired'] as const),
    change: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The exact change made (on a dry run: that would have been made)',
    }),
    applied_at: Timestamp,
    expires_at: Timestamp,
    ended_at: Nullable(Timestamp),
    ended_by: Nullable(Type.String()),
    end_reason: Nullable(Type.String()),
    undo: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'What ending it undid' })),
  }),
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

function policyJson(p: RemediationPolicy) {
  return {
    id: p.id,
    name: p.name,
    scope: { type: p.scope.type, campaign_id: p.scope.campaignId, partner: p.scope.partner },
    alert_kind: p.alertKind,
    alert_scopes: p.alertScopes,
    min_severity: p.minSeverity,
    action: p.action,
    params: p.params,
    mode: p.mode,
    duration_seconds: p.durationSeconds,
    enabled: p.enabled,
    pack: p.pack,
    version: p.version,
    created_by: p.createdBy,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}

function remediationJson(r: Remediation) {
  return {
    id: r.id,
    policy_id: r.policyId,
    alert_id: r.alertId,
    alert_kind: r.alertKind,
    action: r.action,
    target: {
      type: r.target.type,
      campaign_id: r.target.campaignId,
      partner: r.target.partner,
      batch_id: r.target.batchId,
      code_id: r.target.codeId,
    },
    params: r.params,
    dry_run: r.dryRun,
    status: r.status,
    change: r.change,
    applied_at: r.appliedAt.toISOString(),
    expires_at: r.expiresAt.toISOString(),
    ended_at: iso(r.endedAt),
    ended_by: r.endedBy,
    end_reason: r.endReason,
    undo: r.undo,
  };
}

function scopeFromBody(s: StaticDecode<typeof Scope> | undefined) {
  if (s === undefined) return undefined;
  return {
    type: s.type as RemediationPolicy['scope']['type'],
    campaignId: s.campaign_id ?? null,
    partner: s.partner ?? null,
  };
}

function patchFromBody(b: StaticDecode<typeof PolicyUpdate>): PolicyPatch {
  return {
    name: b.name,
    scope: scopeFromBody(b.scope),
    alertKind: b.alert_kind,
    alertScopes: b.alert_scopes,
    minSeverity: b.min_severity,
    action: b.action,
    params: b.params,
    mode: b.mode,
    durationSeconds: b.duration_seconds,
    enabled: b.enabled,
  };
}

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const remediationRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };
    const tags = ['remediation'];

    server.get(
      '/remediation-policies',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Every remediation policy, the shipped defaults included',
          response: { 200: Type.Object({ data: Type.Array(Policy) }), ...ErrorResponses },
        },
      },
      async () => ({ data: (await app.remediations.listPolicies()).map(policyJson) }),
    );

    server.post(
      '/remediation-policies',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Create a policy: on an alert of a kind, an action with parameters, for a duration',
          body: PolicyCreate,
          response: { 201: Policy, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const policy = await app.remediations.createPolicy(
          {
            name: b.name,
            scope: scopeFromBody(b.scope) ?? { type: 'global', campaignId: null, partner: null },
            alertKind: b.alert_kind,
            alertScopes: b.alert_scopes ?? null,
            minSeverity: b.min_severity ?? null,
            action: b.action,
            params: b.params ?? {},
            mode: b.mode,
            durationSeconds: b.duration_seconds,
            enabled: b.enabled ?? true,
          },
          actorOf(request),
        );
        return reply.status(201).send(policyJson(policy));
      },
    );

    server.get(
      '/remediation-policies/:id',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'One remediation policy',
          params: Type.Object({ id: PolicyId }),
          response: { 200: Policy, ...ErrorResponses },
        },
      },
      async (request) => policyJson(await app.remediations.getPolicy(request.params.id)),
    );

    server.patch(
      '/remediation-policies/:id',
      {
        config: fraud,
        schema: {
          tags,
          summary:
            'Change a policy (remediations already applied keep the parameters they were applied with)',
          params: Type.Object({ id: PolicyId }),
          body: PolicyUpdate,
          response: { 200: Policy, ...ErrorResponses },
        },
      },
      async (request) =>
        policyJson(
          await app.remediations.updatePolicy(
            request.params.id,
            patchFromBody(request.body),
            actorOf(request),
          ),
        ),
    );

    server.delete(
      '/remediation-policies/:id',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Delete a policy (its remediations in force hold until lifted or expired)',
          params: Type.Object({ id: PolicyId }),
          response: { 204: Type.Null(), ...ErrorResponses },
        },
      },
      async (request, reply) => {
        await app.remediations.deletePolicy(request.params.id, actorOf(request));
        return reply.status(204).send(null);
      },
    );

    server.get(
      '/remediations',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Remediations applied by policy, newest first (`?status=active`: those in force)',
          querystring: Type.Object(
            {
              status: Type.Optional(StringEnum(['active', 'lifted', 'expired'] as const)),
              alert_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
              ...PageQuery,
            },
            strict,
          ),
          response: { 200: Page(RemediationJson), ...ErrorResponses },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const items = await app.remediations.list({
          status: request.query.status,
          alertId: request.query.alert_id,
          limit: limit + 1,
          before: request.query.cursor,
        });
        return page(items, limit, remediationJson);
      },
    );

    server.get(
      '/remediations/:id',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'One remediation: what it changed, and what ending it undid',
          params: Type.Object({ id: RemediationId }),
          response: { 200: RemediationJson, ...ErrorResponses },
        },
      },
      async (request) => remediationJson(await app.remediations.get(request.params.id)),
    );

    server.post(
      '/remediations/:id/lift',
      {
        config: fraud,
        schema: {
          tags,
          summary: 'Lift a remediation in force now: its change is undone, audited with who and why',
          params: Type.Object({ id: RemediationId }),
          body: Type.Object({ reason: Why }, strict),
          response: { 200: RemediationJson, ...ErrorResponses },
        },
      },
      async (request) =>
        remediationJson(
          await app.remediations.lift(request.params.id, actorOf(request), request.body.reason),
        ),
    );
  };
