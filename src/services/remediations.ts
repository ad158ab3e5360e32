/**
 * Automated remediation by policy. An `alert.raised` event (from the streaming detectors) is matched
 * against the policies; each matching policy applies its action once per alert (a redelivery finds
 * the row of the first and does nothing), in one transaction with the remediation's row, its audit
 * entry (actor `policy:<id>`) and its `remediation.applied` event. Every remediation expires; a sweep
 * on every node ends the expired ones (one statement claims each), and on-call may lift one sooner.
 * Ending runs the undo in the same transaction as the `remediation.lifted` event and its audit entry.
 *
 * Actions that change stored state (pausing, a partner's cap, revoking codes) go through the same
 * store calls a person's change does; the others (throttle, step-up, review hold, a tighter guessing
 * limit) take effect in the request path, which reads the remediations in force from a stamped copy
 * in memory (RemediationGate).
 */

import type { Kysely } from 'kysely';
import type { AlertRaised } from '../domain/alerts.js';
import type { DomainEvent } from '../domain/events.js';
import {
  alertFromPayload,
  checkPolicy,
  chooseTarget,
  type PolicyInput,
  type PolicyProblem,
  type PolicyScope,
  parseParams,
  policiesFor,
  REMEDIATION_ACTIONS,
  type RemediationPolicy,
  targetIds,
  targetKey,
} from '../domain/remediation.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { insertAudit } from '../store/audit.js';
import { findCampaign } from '../store/campaigns.js';
import { setPartnerCap } from '../store/controls.js';
import { appendEvents } from '../store/outbox.js';
import {
  batchShapes,
  campaignOf,
  claimEnd,
  countRevocable,
  deletePolicy,
  dueExpiries,
  findPolicy,
  findRemediation,
  insertPolicy,
  insertRemediation,
  listPolicies,
  listRemediations,
  type Remediation,
  type RemediationStatus,
  revokeTracked,
  setChange,
  setUndo,
  unrevokeTracked,
  updatePolicy,
} from '../store/remediations.js';
import type { Database } from '../store/schema.js';
import { bumpStamp } from '../store/stamps.js';
import type { CampaignService } from './campaigns.js';
import type { Actor, ServiceContext } from './context.js';

export interface RemediationLogger {
  error(obj: object, msg: string): void;
}

export interface PolicyPatch {
  name?: string | undefined;
  scope?: PolicyScope | undefined;
  alertKind?: string | undefined;
  alertScopes?: string[] | null | undefined;
  minSeverity?: string | null | undefined;
  action?: string | undefined;
  params?: Record<string, unknown> | undefined;
  mode?: string | undefined;
  durationSeconds?: number | undefined;
  enabled?: boolean | undefined;
}

/** What a remediation changed: the audit entry's and the event's form of it. */
function remediationPayload(r: Remediation) {
  return {
    remediation_id: r.id,
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
    change: r.change,
    expires_at: r.expiresAt.toISOString(),
  };
}

const policyActor = (policyId: string) => `policy:${policyId}`;

export class RemediationService {
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> | null = null;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly campaigns: CampaignService,
    private readonly options: {
      logger: RemediationLogger;
      /** Called after a remediation starts or ends on this node: its copy in memory is re-read at once. */
      onChange?: () => void;
    },
  ) {
    // Every series exists from the start at 0, so a first remediation shows as an increase.
    for (const action of REMEDIATION_ACTIONS)
      for (const how of ['applied', 'dry_run', 'lifted', 'expired'])
        ctx.metrics?.inc('promoguard_remediations_total', { action, how }, 0);
  }

  // -------------------------------------------------------------------------------------------------
  // Policies
  // -------------------------------------------------------------------------------------------------

  listPolicies(): Promise<RemediationPolicy[]> {
    return listPolicies(this.ctx.db);
  }

  async getPolicy(id: string): Promise<RemediationPolicy> {
    const policy = await findPolicy(this.ctx.db, id);
    if (!policy) throw new AppError('remediation_policy_not_found');
    return policy;
  }

  private async check(input: PolicyInput): Promise<void> {
    const checked = checkPolicy(input);
    if (!checked.ok) throw invalid(checked.problem, checked.detail);
    if (input.scope.campaignId !== null && !(await findCampaign(this.ctx.db, input.scope.campaignId)))
      throw invalid('scope_invalid', `no campaign ${input.scope.campaignId}`);
  }

  async createPolicy(input: PolicyInput, actor: Actor): Promise<RemediationPolicy> {
    await this.check(input);
    const now = this.ctx.clock.now();
    return this.ctx.db.transaction().execute(async (trx) => {
      const policy = await insertPolicy(trx, newId('remediationPolicy', now.getTime()), input, actor, now);
      await insertAudit(
        trx,
        { actor, action: 'remediation_policy.created', targetId: policy.id, reason: null, details: input },
        now,
      );
      return policy;
    });
  }

  async updatePolicy(id: string, patch: PolicyPatch, actor: Actor): Promise<RemediationPolicy> {
    const now = this.ctx.clock.now();
    return this.ctx.db.transaction().execute(async (trx) => {
      const current = await findPolicy(trx, id, { forUpdate: true });
      if (!current) throw new AppError('remediation_policy_not_found');
      const merged: PolicyInput = {
        name: patch.name ?? current.name,
        scope: patch.scope ?? current.scope,
        alertKind: patch.alertKind ?? current.alertKind,
        alertScopes: patch.alertScopes !== undefined ? patch.alertScopes : current.alertScopes,
        minSeverity: patch.minSeverity !== undefined ? patch.minSeverity : current.minSeverity,
        action: patch.action ?? current.action,
        // A new action starts from its own defaults, not the old action's parameters.
        params: patch.params ?? (patch.action && patch.action !== current.action ? {} : current.params),
        mode: patch.mode ?? current.mode,
        durationSeconds: patch.durationSeconds ?? current.durationSeconds,
        enabled: patch.enabled ?? current.enabled,
      };
      await this.check(merged);
      const updated = await updatePolicy(trx, id, merged, now);
      await insertAudit(
        trx,
        {
          actor,
          action: 'remediation_policy.updated',
          targetId: id,
          reason: null,
          details: { before: policyDetails(current), after: merged },
        },
        now,
      );
      return updated;
    });
  }

  async deletePolicy(id: string, actor: Actor): Promise<void> {
    const now = this.ctx.clock.now();
    await this.ctx.db.transaction().execute(async (trx) => {
      const current = await findPolicy(trx, id, { forUpdate: true });
      if (!current || !(await deletePolicy(trx, id, now))) throw new AppError('remediation_policy_not_found');
      await insertAudit(
        trx,
        {
          actor,
          action: 'remediation_policy.deleted',
          targetId: id,
          reason: null,
          details: policyDetails(current),
        },
        now,
      );
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Alerts
  // -------------------------------------------------------------------------------------------------

  /** The `alert.raised` handler: at least once per alert, so every step deduplicates by the alert id. */
  async onEvent(event: DomainEvent): Promise<void> {
    if (event.type !== 'alert.raised') return;
    const alert = alertFromPayload(event.payload);
    if (!alert) {
      // Redelivering a payload this node cannot read would not help: log it and move on.
      this.options.logger.error(
        { event_id: event.id },
        'remediation: an alert.raised payload it cannot read',
      );
      return;
    }
    await this.onAlert(alert);
  }

  /** Apply every policy answering the alert; the remediations applied now (none for a repeat). */
  async onAlert(alert: AlertRaised): Promise<Remediation[]> {
    const policies = policiesFor(await listPolicies(this.ctx.db), alert);
    const applied: Remediation[] = [];
    for (const policy of policies) {
      const r = await this.apply(alert, policy);
      if (r) applied.push(r);
    }
    return applied;
  }

  private async apply(alert: AlertRaised, policy: RemediationPolicy): Promise<Remediation | null> {
    const parsed = parseParams(policy.action, policy.params);
    if (!parsed.ok) {
      this.options.logger.error(
        { policy_id: policy.id, detail: parsed.detail },
        'remediation: policy invalid',
      );
      return null;
    }
    const ids = targetIds(alert);
    const campaignId = ids.campaignId ?? (await campaignOf(this.ctx.db, ids));
    // An alert naming a campaign that does not exist is logged, not retried: redelivery cannot help it.
    const known = campaignId !== null && (await findCampaign(this.ctx.db, campaignId)) !== null;
    const target = known ? chooseTarget(policy.action, { ...ids, campaignId }) : null;
    if (!target) {
      this.options.logger.error(
        { policy_id: policy.id, alert_id: alert.alertId, scope: alert.scope },
        `remediation: the alert names nothing ${policy.action} can act on`,
      );
      return null;
    }
    const now = this.ctx.clock.now();
    const actor = policyActor(policy.id);
    const reason = `${alert.kind} alert ${alert.alertId} on ${alert.scope.type} ${alert.scope.id}`;
    const result = await this.ctx.db.transaction().execute(async (trx) => {
      const inserted = await insertRemediation(trx, {
        id: newId('remediation', now.getTime()),
        policyId: policy.id,
        alertId: alert.alertId,
        alertKind: alert.kind,
        action: policy.action,
        target: { ...target, key: targetKey(target) },
        // The policy's parameters as they were: editing the policy later does not change this one.
        params: policy.params,
        dryRun: policy.mode === 'dry_run',
        change: {},
        appliedAt: now,
        expiresAt: new Date(now.getTime() + policy.durationSeconds * 1000),
      });
      // A redelivery, or this policy's remediation on this target is still in force.
      if (!inserted) return null;
      const change = await this.act(trx, inserted, actor, reason, now);
      await setChange(trx, inserted.id, change);
      const r = { ...inserted, change };
      await insertAudit(
        trx,
        {
          actor,
          action: r.dryRun ? 'remediation.dry_run' : 'remediation.applied',
          targetId: r.id,
          reason,
          details: remediationPayload(r),
        },
        now,
      );
      await appendEvents(
        trx,
        [
          {
            type: 'remediation.applied',
            aggregateId: r.id,
            payload: { ...remediationPayload(r), actor, reason },
          },
        ],
        now,
      );
      await bumpStamp(trx, 'remediations');
      return r;
    });
    if (result) {
      this.ctx.afterCommit();
      this.options.onChange?.();
      this.ctx.metrics?.inc('promoguard_remediations_total', {
        action: result.action,
        how: result.dryRun ? 'dry_run' : 'applied',
      });
    }
    return result;
  }

  /** Make the change (or, on a dry run, only describe it); the change as recorded, for the undo. */
  private async act(
    trx: Kysely<Database>,
    r: Remediation,
    actor: string,
    reason: string,
    now: Date,
  ): Promise<Record<string, unknown>> {
    const t = r.target;
    const campaignId = t.campaignId as string;
    const parsed = parseParams(r.action, r.params);
    if (!parsed.ok) return {};
    const p = parsed.value;
    switch (p.action) {
      case 'throttle':
        return { campaign_id: campaignId, per_minute: p.perMinute };
      case 'require_step_up':
      case 'hold_for_review':
        return {
          campaign_id: campaignId,
          code_id: t.codeId,
          applies_to: p.appliesTo,
          new_account_hours: p.newAccountHours,
        };
      case 'tighten_guessing':
        return {
          campaign_id: campaignId,
          batch_id: t.batchId,
          failures_per_caller: p.failuresPerCaller,
          window_seconds: p.windowSeconds,
          shapes: (await batchShapes(trx, t)).map((s) => `${s.prefix}+${s.randomLength}`),
        };
      case 'pause': {
        if (t.type === 'partner') {
          const row = await trx
            .selectFrom('partner_caps')
            .select('cap')
            .where('campaign_id', '=', campaignId)
            .where('partner', '=', t.partner as string)
            .executeTakeFirst();
          const previous = row?.cap ?? null;
          if (!r.dryRun) await setPartnerCap(trx, campaignId, t.partner as string, 0);
          return { campaign_id: campaignId, partner: t.partner, cap: 0, previous_cap: previous };
        }
        if (r.dryRun) {
          const campaign = await findCampaign(trx, campaignId);
          return {
            campaign_id: campaignId,
            paused: campaign?.status === 'active',
            from: campaign?.status ?? null,
          };
        }
        const moved = await this.campaigns.transitionIn(
          trx,
          campaignId,
          ['active'],
          'paused',
          actor,
          reason,
          now,
        );
        // Only an active campaign is paused; one already paused or ended is left as it is.
        return moved
          ? {
              campaign_id: campaignId,
              paused: true,
              from: 'active',
              paused_at: moved.after.updatedAt.toISOString(),
            }
          : { campaign_id: campaignId, paused: false };
      }
      case 'revoke_unredeemed': {
        const n = r.dryRun ? await countRevocable(trx, t) : await revokeTracked(trx, r.id, t, now);
        if (!r.dryRun && n > 0) {
          await appendEvents(
            trx,
            [
              {
                type: 'code.bulk_revoked',
                aggregateId: campaignId,
                payload: { campaign_id: campaignId, partner: t.partner, revoked: n, actor, reason },
              },
            ],
            now,
          );
        }
        return { campaign_id: campaignId, partner: t.partner, batch_id: t.batchId, revoked: n };
      }
    }
  }

  /** Undo what `act` changed, where it still stands as the remediation left it. */
  private async undo(
    trx: Kysely<Database>,
    r: Remediation,
    actor: string,
    reason: string,
    now: Date,
  ): Promise<Record<string, unknown>> {
    if (r.dryRun) return { changed: false };
    const c = r.change;
    switch (r.action) {
      case 'pause': {
        if (r.target.type === 'partner') {
          const row = await trx
            .selectFrom('partner_caps')
            .select('cap')
            .where('campaign_id', '=', r.target.campaignId as string)
            .where('partner', '=', r.target.partner as string)
            .forUpdate()
            .executeTakeFirst();
          // Someone set another cap since: theirs stands.
          if (row?.cap !== 0) return { restored: false, why: 'the partner cap was changed since' };
          const previous = typeof c.previous_cap === 'number' ? c.previous_cap : null;
          await setPartnerCap(trx, r.target.campaignId as string, r.target.partner as string, previous);
          return { restored: true, cap: previous };
        }
        if (c.paused !== true) return { resumed: false, why: 'the remediation paused nothing' };
        const campaign = await findCampaign(trx, r.target.campaignId as string, { forUpdate: true });
        // Resumed only if nobody touched the campaign since the pause (its status or terms).
        if (campaign?.status !== 'paused' || campaign.updatedAt.toISOString() !== c.paused_at)
          return { resumed: false, why: 'the campaign was changed since' };
        await this.campaigns.transitionIn(trx, campaign.id, ['paused'], 'active', actor, reason, now);
        return { resumed: true };
      }
      case 'revoke_unredeemed':
        return { unrevoked: await unrevokeTracked(trx, r.id) };
      default:
        // Throttles, step-ups, review holds and guessing limits live only in the request path's copy.
        return { ended: true };
    }
  }

  // -------------------------------------------------------------------------------------------------
  // On-call: read, lift; the expiry sweep
  // -------------------------------------------------------------------------------------------------

  list(filter: {
    status?: RemediationStatus | undefined;
    alertId?: string | undefined;
    limit: number;
    before?: string | undefined;
  }): Promise<Remediation[]> {
    return listRemediations(this.ctx.db, filter);
  }

  async get(id: string): Promise<Remediation> {
    const r = await findRemediation(this.ctx.db, id);
    if (!r) throw new AppError('remediation_not_found');
    return r;
  }

  /** Lift a remediation in force now; its undo runs. 409 when it already ended. */
  async lift(id: string, actor: Actor, reason: string): Promise<Remediation> {
    const ended = await this.end(id, 'lifted', actor, reason);
    if (ended) return ended;
    const r = await this.get(id);
    throw new AppError('remediation_not_active', `the remediation is already ${r.status}`, {
      remediation_status: r.status,
    });
  }

  private async end(
    id: string,
    how: 'lifted' | 'expired',
    actor: string,
    reason: string,
  ): Promise<Remediation | null> {
    const now = this.ctx.clock.now();
    const ended = await this.ctx.db.transaction().execute(async (trx) => {
      const claimed = await claimEnd(trx, id, how, actor, reason, now);
      if (!claimed) return null;
      const undoActor = how === 'expired' ? policyActor(claimed.policyId) : actor;
      const undo = await this.undo(trx, claimed, undoActor, reason, now);
      await setUndo(trx, id, undo);
      const r = { ...claimed, undo };
      const details = { ...remediationPayload(r), how, undo };
      await insertAudit(trx, { actor, action: `remediation.${how}`, targetId: id, reason, details }, now);
      await appendEvents(
        trx,
        [{ type: 'remediation.lifted', aggregateId: id, payload: { ...details, actor, reason } }],
        now,
      );
      await bumpStamp(trx, 'remediations');
      return r;
    });
    if (ended) {
      this.ctx.afterCommit();
      this.options.onChange?.();
      this.ctx.metrics?.inc('promoguard_remediations_total', { action: ended.action, how });
    }
    return ended;
  }

  /** End every remediation past its expiry; safe on several nodes (each is claimed by one). */
  async sweep(): Promise<number> {
    let n = 0;
    for (;;) {
      const due = await dueExpiries(this.ctx.db, this.ctx.clock.now(), 100);
      let failed = 0;
      for (const id of due) {
        try {
          const r = await findRemediation(this.ctx.db, id);
          if (r && (await this.end(id, 'expired', policyActor(r.policyId), 'expired'))) n++;
        } catch (err) {
          // One that cannot be ended now (its undo failed, rolled back) does not hold up the others.
          failed++;
          this.options.logger.error(
            { err, remediation_id: id },
            'remediation expiry failed; retried next sweep',
          );
        }
      }
      if (due.length < 100 || failed > 0) return n;
    }
  }

  start(intervalMs: number): void {
    this.sweeper = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = this.sweep()
        .catch((err: unknown) => this.options.logger.error({ err }, 'remediation expiry sweep failed'))
        .finally(() => {
          this.sweeping = null;
        });
    }, intervalMs);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.sweeping;
  }
}

function invalid(problem: PolicyProblem, detail: string): AppError {
  return new AppError('remediation_policy_invalid', detail, { reason: problem });
}

function policyDetails(p: RemediationPolicy) {
  return {
    name: p.name,
    scope: p.scope,
    alertKind: p.alertKind,
    alertScopes: p.alertScopes,
    minSeverity: p.minSeverity,
    action: p.action,
    params: p.params,
    mode: p.mode,
    durationSeconds: p.durationSeconds,
    enabled: p.enabled,
  };
}
