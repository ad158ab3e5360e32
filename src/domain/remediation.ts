/**
 * Automated remediation by policy: which policy answers an alert, on what it acts, and with which
 * parameters. Pure: the service applies what this decides, the request path asks `appliesTo` who a
 * remediation in force reaches.
 */
import {
  ALERT_KINDS,
  ALERT_SCOPE_TYPES,
  ALERT_SEVERITIES,
  type AlertKind,
  type AlertRaised,
  type AlertScopeType,
  type AlertSeverity,
} from './alerts.js';

export const REMEDIATION_ACTIONS = [
  /** The campaign redeems at most `per_minute` a minute (with the campaign's own throttle, the lower). */
  'throttle',
  /** Redemptions of the code or campaign by `applies_to` callers get a step-up challenge (HTTP 428). */
  'require_step_up',
  /** Redemptions of the code or campaign by `applies_to` callers are held for review. */
  'hold_for_review',
  /** A partner alert: the partner's cap is set to 0; otherwise the campaign is paused. */
  'pause',
  /** Every unredeemed code of the partner (in its campaign) or of the batch is revoked. */
  'revoke_unredeemed',
  /** A caller failing `failures_per_caller` times on the batch's (or campaign's batches') codes is refused there. */
  'tighten_guessing',
] as const;
export type RemediationAction = (typeof REMEDIATION_ACTIONS)[number];

export const REMEDIATION_MODES = ['enforce', 'dry_run'] as const;
export type RemediationMode = (typeof REMEDIATION_MODES)[number];

export const POLICY_SCOPES = ['global', 'campaign', 'partner'] as const;
export type PolicyScopeType = (typeof POLICY_SCOPES)[number];

/** Who a step-up or a review hold reaches. */
export const CALLER_CLASSES = ['new_accounts', 'unauthenticated', 'everyone'] as const;
export type CallerClass = (typeof CALLER_CLASSES)[number];

export const MIN_DURATION_SECONDS = 60;
export const MAX_DURATION_SECONDS = 30 * 86_400;

export type RemediationParams =
  | { action: 'throttle'; perMinute: number }
  | { action: 'require_step_up' | 'hold_for_review'; appliesTo: CallerClass[]; newAccountHours: number }
  | { action: 'pause' }
  | { action: 'revoke_unredeemed' }
  | { action: 'tighten_guessing'; failuresPerCaller: number; windowSeconds: number };

export interface PolicyScope {
  type: PolicyScopeType;
  campaignId: string | null;
  partner: string | null;
}

export interface RemediationPolicy {
  id: string;
  name: string;
  scope: PolicyScope;
  alertKind: AlertKind;
  /** The alert scopes it reacts to; null = every scope its action can act on (ACTION_SCOPES). */
  alertScopes: AlertScopeType[] | null;
  minSeverity: AlertSeverity | null;
  action: RemediationAction;
  /** As stored and shown (snake_case); `parseParams` gives the typed form. */
  params: Record<string, unknown>;
  mode: RemediationMode;
  durationSeconds: number;
  enabled: boolean;
  pack: string | null;
  version: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

/** A stable reason a policy is refused (422 `remediation_policy_invalid`). */
export type PolicyProblem =
  | 'alert_kind_unknown'
  | 'alert_scope_unknown'
  | 'severity_unknown'
  | 'action_unknown'
  | 'mode_unknown'
  | 'scope_invalid'
  | 'duration_out_of_range'
  | 'params_invalid'
  | 'action_not_applicable';

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: PolicyProblem; detail: string };

const fail = (problem: PolicyProblem, detail: string) => ({ ok: false as const, problem, detail });

function intParam(
  params: Record<string, unknown>,
  name: string,
  fallback: number | undefined,
  min: number,
  max: number,
): number | string {
  const v = params[name] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    return `${name} must be an integer from ${min} to ${max}`;
  return v;
}

/** The parameters each action takes, with their defaults; unknown names are refused. */
export function parseParams(
  action: RemediationAction,
  params: Record<string, unknown>,
): Checked<RemediationParams> {
  const allowed: Record<RemediationAction, string[]> = {
    throttle: ['per_minute'],
    require_step_up: ['applies_to', 'new_account_hours'],
    hold_for_review: ['applies_to', 'new_account_hours'],
    pause: [],
    revoke_unredeemed: [],
    tighten_guessing: ['failures_per_caller', 'window_seconds'],
  };
  const extra = Object.keys(params).filter((k) => !allowed[action].includes(k));
  if (extra.length > 0) return fail('params_invalid', `${action} takes no parameter ${extra.join(', ')}`);
  switch (action) {
    case 'throttle': {
      const perMinute = intParam(params, 'per_minute', undefined, 1, 1_000_000);
      if (typeof perMinute === 'string') return fail('params_invalid', perMinute);
      return { ok: true, value: { action, perMinute } };
    }
    case 'require_step_up':
    case 'hold_for_review': {
      const raw = params.applies_to ?? ['new_accounts', 'unauthenticated'];
      if (
        !Array.isArray(raw) ||
        raw.length === 0 ||
        !raw.every((c) => (CALLER_CLASSES as readonly unknown[]).includes(c))
      ) {
        return fail('params_invalid', `applies_to must list some of ${CALLER_CLASSES.join(', ')}`);
      }
      const hours = intParam(params, 'new_account_hours', 72, 1, 8_760);
      if (typeof hours === 'string') return fail('params_invalid', hours);
      return {
        ok: true,
        value: { action, appliesTo: [...new Set(raw as CallerClass[])], newAccountHours: hours },
      };
    }
    case 'pause':
    case 'revoke_unredeemed':
      return { ok: true, value: { action } };
    case 'tighten_guessing': {
      const failures = intParam(params, 'failures_per_caller', 3, 1, 1_000);
      if (typeof failures === 'string') return fail('params_invalid', failures);
      const windowSeconds = intParam(params, 'window_seconds', 600, 60, 86_400);
      if (typeof windowSeconds === 'string') return fail('params_invalid', windowSeconds);
      return { ok: true, value: { action, failuresPerCaller: failures, windowSeconds } };
    }
  }
}

/** The alert scopes an action can act on (a revoke needs a partner or a batch to name its codes). */
export const ACTION_SCOPES: Record<RemediationAction, readonly AlertScopeType[]> = {
  throttle: ['code', 'campaign', 'partner', 'batch'],
  require_step_up: ['code', 'campaign', 'partner', 'batch'],
  hold_for_review: ['code', 'campaign', 'partner', 'batch'],
  pause: ['code', 'campaign', 'partner', 'batch'],
  revoke_unredeemed: ['partner', 'batch'],
  tighten_guessing: ['campaign', 'batch', 'code'],
};

export interface PolicyInput {
  name: string;
  scope: PolicyScope;
  alertKind: string;
  alertScopes: string[] | null;
  minSeverity: string | null;
  action: string;
  params: Record<string, unknown>;
  mode: string;
  durationSeconds: number;
  enabled: boolean;
}

/** Checks a policy as a whole (after a patch is merged): what the table's CHECKs cannot say. */
export function checkPolicy(p: PolicyInput): Checked<RemediationParams> {
  if (!(ALERT_KINDS as readonly string[]).includes(p.alertKind))
    return fail('alert_kind_unknown', `alert_kind must be one of ${ALERT_KINDS.join(', ')}`);
  if (p.alertScopes !== null) {
    const bad = p.alertScopes.filter((s) => !(ALERT_SCOPE_TYPES as readonly string[]).includes(s));
    if (bad.length > 0 || p.alertScopes.length === 0)
      return fail('alert_scope_unknown', `alert_scopes must list some of ${ALERT_SCOPE_TYPES.join(', ')}`);
  }
  if (p.minSeverity !== null && !(ALERT_SEVERITIES as readonly string[]).includes(p.minSeverity))
    return fail('severity_unknown', `min_severity must be one of ${ALERT_SEVERITIES.join(', ')}`);
  if (!(REMEDIATION_ACTIONS as readonly string[]).includes(p.action))
    return fail('action_unknown', `action must be one of ${REMEDIATION_ACTIONS.join(', ')}`);
  if (!(REMEDIATION_MODES as readonly string[]).includes(p.mode))
    return fail('mode_unknown', `mode must be one of ${REMEDIATION_MODES.join(', ')}`);
  const s = p.scope;
  const scopeOk =
    (s.type === 'global' && s.campaignId === null && s.partner === null) ||
    (s.type === 'campaign' && s.campaignId !== null && s.partner === null) ||
    (s.type === 'partner' && s.partner !== null);
  if (!scopeOk)
    return fail(
      'scope_invalid',
      'scope is {type: global}, {type: campaign, campaign_id} or {type: partner, partner, campaign_id?}',
    );
  if (
    !Number.isInteger(p.durationSeconds) ||
    p.durationSeconds < MIN_DURATION_SECONDS ||
    p.durationSeconds > MAX_DURATION_SECONDS
  ) {
    return fail(
      'duration_out_of_range',
      `duration_seconds must be from ${MIN_DURATION_SECONDS} to ${MAX_DURATION_SECONDS}: every remediation expires`,
    );
  }
  const action = p.action as RemediationAction;
  // No list: whichever of the alert's scopes the action can act on (the others are passed over).
  const scopes = (p.alertScopes ?? []) as readonly AlertScopeType[];
  const usable = ACTION_SCOPES[action];
  if (!scopes.every((x) => usable.includes(x)))
    return fail(
      'action_not_applicable',
      `${action} acts only on alerts about ${usable.join(', ')}: set alert_scopes to those`,
    );
  return parseParams(action, p.params);
}

const SEVERITY_RANK: Record<AlertSeverity, number> = { ticket: 0, page: 1 };
const SPECIFICITY: Record<PolicyScopeType, number> = { global: 0, campaign: 1, partner: 2 };

function covers(p: RemediationPolicy, alert: AlertRaised): boolean {
  if (!p.enabled || p.alertKind !== alert.kind) return false;
  if (!(p.alertScopes ?? ACTION_SCOPES[p.action]).includes(alert.scope.type)) return false;
  if (p.minSeverity !== null && SEVERITY_RANK[alert.severity] < SEVERITY_RANK[p.minSeverity]) return false;
  const t = targetIds(alert);
  if (p.scope.campaignId !== null && p.scope.campaignId !== t.campaignId) return false;
  if (p.scope.partner !== null && p.scope.partner !== t.partner) return false;
  return true;
}

/**
 * The policies that answer an alert: those covering it at the most specific scope present (a partner
 * policy replaces campaign and global ones; a campaign policy replaces global ones), so an operator
 * tunes one campaign or partner without touching the defaults.
 */
export function policiesFor(policies: readonly RemediationPolicy[], alert: AlertRaised): RemediationPolicy[] {
  const matching = policies.filter((p) => covers(p, alert));
  const top = Math.max(-1, ...matching.map((p) => SPECIFICITY[p.scope.type]));
  return matching.filter((p) => SPECIFICITY[p.scope.type] === top);
}

/** The ids an alert names, from its scope and the scope's own type. */
export function targetIds(alert: AlertRaised): {
  campaignId: string | null;
  partner: string | null;
  batchId: string | null;
  codeId: string | null;
} {
  const s = alert.scope;
  return {
    campaignId: s.campaignId ?? (s.type === 'campaign' ? s.id : null),
    partner: s.partner ?? (s.type === 'partner' ? s.id : null),
    batchId: s.batchId ?? (s.type === 'batch' ? s.id : null),
    codeId: s.type === 'code' ? s.id : null,
  };
}

export type TargetType = 'campaign' | 'code' | 'partner' | 'batch';

export interface Target {
  type: TargetType;
  campaignId: string | null;
  partner: string | null;
  batchId: string | null;
  codeId: string | null;
}

/** A stable text naming the target: one remediation per policy and target is in force at a time. */
export function targetKey(t: Target): string {
  switch (t.type) {
    case 'campaign':
      return `campaign:${t.campaignId}`;
    case 'code':
      return `code:${t.codeId}`;
    case 'partner':
      return `partner:${t.campaignId}:${t.partner}`;
    case 'batch':
      return `batch:${t.batchId}`;
  }
}

/**
 * What an action acts on for this alert, once the ids the alert left out were looked up (a code's or
 * a batch's campaign); null when it cannot act (e.g. a revoke with neither a partner nor a batch).
 */
export function chooseTarget(
  action: RemediationAction,
  ids: { campaignId: string | null; partner: string | null; batchId: string | null; codeId: string | null },
): Target | null {
  const { campaignId, partner, batchId, codeId } = ids;
  const t = (type: TargetType): Target => ({
    type,
    campaignId,
    partner: type === 'partner' ? partner : null,
    batchId: type === 'batch' ? batchId : null,
    codeId: type === 'code' ? codeId : null,
  });
  switch (action) {
    case 'throttle':
      return campaignId ? t('campaign') : null;
    case 'require_step_up':
    case 'hold_for_review':
      if (codeId && campaignId) return t('code');
      return campaignId ? t('campaign') : null;
    case 'pause':
      if (partner && campaignId) return t('partner');
      return campaignId ? t('campaign') : null;
    case 'revoke_unredeemed':
      if (partner && campaignId) return t('partner');
      return batchId && campaignId ? t('batch') : null;
    case 'tighten_guessing':
      if (batchId && campaignId) return t('batch');
      return campaignId ? t('campaign') : null;
  }
}

/** Does a step-up or review remediation reach this caller? */
export function reachesCaller(
  appliesTo: readonly CallerClass[],
  newAccountHours: number,
  accountCreatedAt: Date | null,
  now: Date,
): boolean {
  if (appliesTo.includes('everyone')) return true;
  // No account age from the merchant: a guest, or an account the merchant does not vouch for.
  if (accountCreatedAt === null) return appliesTo.includes('unauthenticated');
  const ageMs = now.getTime() - accountCreatedAt.getTime();
  return appliesTo.includes('new_accounts') && ageMs < newAccountHours * 3_600_000;
}

/** Parse an `alert.raised` payload (snake_case on the wire); null when it is not one. */
export function alertFromPayload(payload: unknown): AlertRaised | null {
  if (payload === null || typeof payload !== 'object') return null;
  const p = payload as Record<string, unknown>;
  const scope = p.scope as Record<string, unknown> | null | undefined;
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  if (
    !str(p.alert_id) ||
    !(ALERT_KINDS as readonly unknown[]).includes(p.kind) ||
    !(ALERT_SEVERITIES as readonly unknown[]).includes(p.severity) ||
    !scope ||
    typeof scope !== 'object' ||
    !(ALERT_SCOPE_TYPES as readonly unknown[]).includes(scope.type) ||
    !str(scope.id)
  ) {
    return null;
  }
  const campaignId = str(scope.campaign_id);
  const partner = str(scope.partner);
  const batchId = str(scope.batch_id);
  return {
    alertId: p.alert_id as string,
    kind: p.kind as AlertKind,
    severity: p.severity as AlertSeverity,
    scope: {
      type: scope.type as AlertScopeType,
      id: scope.id as string,
      ...(campaignId ? { campaignId } : {}),
      ...(partner ? { partner } : {}),
      ...(batchId ? { batchId } : {}),
    },
    observed: typeof p.observed === 'number' ? p.observed : 0,
    expected: typeof p.expected === 'number' ? p.expected : 0,
    intervalSeconds: typeof p.interval_seconds === 'number' ? p.interval_seconds : 0,
    triggeredByEventId: str(p.triggered_by_event_id) ?? null,
    triggeredAt: str(p.triggered_at) ?? '',
    raisedAt: str(p.raised_at) ?? '',
  };
}
