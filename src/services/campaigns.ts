import type { Kysely } from 'kysely';
import { type ApprovalPolicy, type ApprovalRule, approvalRulesTripped } from '../domain/approvals.js';
import {
  type CampaignStatus,
  canTransition,
  type Eligibility,
  type PlannedPeak,
} from '../domain/campaign.js';
import type { DiscountRule } from '../domain/money.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { type ApprovalKind, type ApprovalRecord, insertApproval } from '../store/approvals.js';
import { insertAudit } from '../store/audit.js';
import {
  campaignSeries,
  type SeriesBucket,
  type SeriesPoint,
  spentBefore,
} from '../store/campaign-series.js';
import {
  type CampaignFields,
  findCampaign,
  insertCampaign,
  listCampaigns,
  setCampaignStatus,
  updateCampaignFields,
} from '../store/campaigns.js';
import { appendEvents } from '../store/outbox.js';
import type { CampaignRecord } from '../store/rows.js';
import type { Database } from '../store/schema.js';
import type { Actor, ServiceContext } from './context.js';

export interface CampaignInput {
  name: string;
  currency: string;
  discount: DiscountRule;
  status?: 'draft' | 'active' | undefined;
  startsAt?: Date | undefined;
  endsAt?: Date | null | undefined;
  redemptionCap?: number | null | undefined;
  budgetMinor?: number | null | undefined;
  perCustomerCap?: number | null | undefined;
  perPersonCap?: number | null | undefined;
  throttlePerMinute?: number | null | undefined;
  minOrderMinor?: number | null | undefined;
  eligibility?: Partial<Eligibility> | undefined;
  metadata?: Record<string, string> | undefined;
  plannedPeaks?: PlannedPeak[] | undefined;
}

export type CampaignPatch = Partial<Omit<CampaignInput, 'currency' | 'status' | 'eligibility'>> & {
  status?: CampaignStatus | undefined;
  eligibility?: Partial<Eligibility> | undefined;
};

/** A patch field left out keeps the current value; an explicit null clears it. */
const keep = <T>(next: T | undefined, current: T): T => (next === undefined ? current : next);

const NO_ELIGIBILITY: Eligibility = {
  customerIds: null,
  segments: null,
  regions: null,
  firstOrderOnly: false,
};

/** The terms a change may set (everything but the currency, which is fixed at creation). */
const TERMS = [
  'name',
  'discount',
  'startsAt',
  'endsAt',
  'redemptionCap',
  'budgetMinor',
  'perCustomerCap',
  'perPersonCap',
  'throttlePerMinute',
  'minOrderMinor',
  'eligibility',
  'metadata',
  'plannedPeaks',
] as const satisfies readonly (keyof CampaignFields)[];

/** What a change did: each term it changed, from and to, for the audit trail. */
function changedTerms(before: CampaignRecord, after: CampaignRecord) {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const term of TERMS) {
    if (JSON.stringify(before[term]) !== JSON.stringify(after[term])) {
      changes[term] = { from: before[term], to: after[term] };
    }
  }
  return changes;
}

/** A patch as an approval stores it (jsonb): instants as ISO text, absent fields left out. */
function encodePatch(patch: CampaignPatch): Record<string, unknown> {
  return JSON.parse(JSON.stringify(patch)) as Record<string, unknown>;
}

function decodePatch(stored: Record<string, unknown>): CampaignPatch {
  const patch = { ...stored } as CampaignPatch & Record<string, unknown>;
  if (typeof stored.startsAt === 'string') patch.startsAt = new Date(stored.startsAt);
  if (typeof stored.endsAt === 'string') patch.endsAt = new Date(stored.endsAt);
  return patch;
}

/** The outcome of a change: applied, or waiting for a second key's approval. */
export interface CampaignChange {
  /** The campaign as it now stands: unchanged while the change waits (a risky new one is a draft). */
  campaign: CampaignRecord;
  /** The approval the change waits for; null when it was applied. */
  approval: ApprovalRecord | null;
}

export interface ApprovalSettings {
  policy: ApprovalPolicy;
  /** How long a pending approval waits for its decision. */
  expiresAfterMs: number;
}

/** Set on a change applied by an approval: who asked for it, recorded beside the approver. */
interface ApprovedBy {
  approvalId: string;
  requestedBy: string;
}

const approvedDetails = (via: ApprovedBy | undefined) =>
  via ? { approval_id: via.approvalId, requested_by: via.requestedBy } : {};

function checkFields(f: CampaignFields): void {
  if (f.endsAt !== null && f.endsAt.getTime() <= f.startsAt.getTime()) {
    throw new AppError('validation_failed', 'ends_at must be later than starts_at', {
      errors: [{ field: '/ends_at', message: 'must be later than starts_at' }],
    });
  }
  f.plannedPeaks.forEach((p, i) => {
    if (p.endsAt.getTime() <= p.startsAt.getTime()) {
      throw new AppError('validation_failed', 'a planned peak must end after it starts', {
        errors: [{ field: `/planned_peaks/${i}/ends_at`, message: 'must be later than starts_at' }],
      });
    }
  });
}

export const MAX_SERIES_BUCKETS = 2000;
const BUCKET_MS: Record<SeriesBucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

export class CampaignService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly approvals: ApprovalSettings,
  ) {}

  /**
   * Create a campaign. If it would go live under terms the approval policy flags, it is created as a
   * draft and its activation waits for a second key.
   */
  async create(input: CampaignInput, actor: Actor): Promise<CampaignChange> {
    const now = this.ctx.clock.now();
    const fields: CampaignFields = {
      name: input.name,
      currency: input.currency,
      discount: input.discount,
      startsAt: input.startsAt ?? now,
      endsAt: input.endsAt ?? null,
      redemptionCap: input.redemptionCap ?? null,
      budgetMinor: input.budgetMinor ?? null,
      perCustomerCap: input.perCustomerCap ?? null,
      perPersonCap: input.perPersonCap ?? null,
      throttlePerMinute: input.throttlePerMinute ?? null,
      minOrderMinor: input.minOrderMinor ?? null,
      eligibility: { ...NO_ELIGIBILITY, ...input.eligibility },
      metadata: input.metadata ?? {},
      plannedPeaks: input.plannedPeaks ?? [],
    };
    checkFields(fields);
    const status = input.status ?? 'draft';
    const rules = approvalRulesTripped(this.approvals.policy, null, { ...fields, status });
    const change = await this.ctx.db.transaction().execute(async (trx) => {
      const created = await insertCampaign(
        trx,
        newId('campaign', now.getTime()),
        rules.length > 0 ? 'draft' : status,
        fields,
        now,
      );
      await appendEvents(
        trx,
        [{ type: 'campaign.created', aggregateId: created.id, payload: { campaign: created, actor } }],
        now,
      );
      await insertAudit(
        trx,
        {
          actor,
          action: 'campaign.created',
          targetId: created.id,
          reason: null,
          details: { campaign: created },
        },
        now,
      );
      const approval =
        rules.length > 0
          ? await this.requestApproval(trx, 'campaign.create', created, { status }, rules, actor, null, now)
          : null;
      return { campaign: created, approval };
    });
    this.ctx.afterCommit();
    return change;
  }

  /**
   * The campaign over a window in buckets (see store/campaign-series.ts), with the discount in force
   * from before the window, where its budget burn starts. At most MAX_SERIES_BUCKETS buckets.
   */
  async series(
    id: string,
    window: { from: Date; to: Date; bucket: SeriesBucket; newAccountHours: number },
  ): Promise<{ campaign: CampaignRecord; spentBefore: number; points: SeriesPoint[] }> {
    const span = window.to.getTime() - window.from.getTime();
    if (span <= 0) throw new AppError('validation_failed', 'querystring/to must be after from');
    if (span / BUCKET_MS[window.bucket] > MAX_SERIES_BUCKETS) {
      throw new AppError(
        'validation_failed',
        `the window holds more than ${MAX_SERIES_BUCKETS} ${window.bucket} buckets; choose a larger bucket or a shorter window`,
      );
    }
    const campaign = await this.get(id);
    const [spent, points] = await Promise.all([
      spentBefore(this.ctx.db, id, window.from),
      campaignSeries(this.ctx.db, id, window),
    ]);
    return { campaign, spentBefore: spent, points };
  }

  async get(id: string): Promise<CampaignRecord> {
    const campaign = await findCampaign(this.ctx.db, id);
    if (!campaign) throw new AppError('campaign_not_found');
    return campaign;
  }

  list(page: {
    limit: number;
    before?: string | undefined;
    status?: CampaignStatus | undefined;
  }): Promise<CampaignRecord[]> {
    return listCampaigns(this.ctx.db, page);
  }

  /** Change terms and/or status; a change the approval policy flags waits for a second key instead. */
  async update(id: string, patch: CampaignPatch, actor: Actor): Promise<CampaignChange> {
    const now = this.ctx.clock.now();
    const change = await this.ctx.db.transaction().execute(async (trx) => {
      // The row lock orders this edit against concurrent edits and status changes.
      const current = await findCampaign(trx, id, { forUpdate: true });
      if (!current) throw new AppError('campaign_not_found');
      const next = this.preview(current, patch);
      const rules = approvalRulesTripped(this.approvals.policy, current, next);
      if (rules.length > 0) {
        const approval = await this.requestApproval(
          trx,
          'campaign.update',
          current,
          encodePatch(patch),
          rules,
          actor,
          null,
          now,
        );
        return { campaign: current, approval };
      }
      return { campaign: await this.apply(trx, current, patch, actor, null, now), approval: null };
    });
    this.ctx.afterCommit();
    return change;
  }

  /**
   * Pause, resume or end. The redemption path reads the status inside its atomic statement, so the
   * change holds for the very next redemption on every node; nothing is cached across it. Pausing and
   * ending never need approval; resuming does only if the terms were made riskier while paused, which
   * was judged when they were changed, so in practice the kill switch works alone.
   */
  async changeStatus(
    id: string,
    to: CampaignStatus,
    actor: Actor,
    reason: string | null,
    /** Only from these statuses (resume leaves only `paused`; it never activates a draft). */
    from?: readonly CampaignStatus[],
  ): Promise<CampaignChange> {
    const now = this.ctx.clock.now();
    const change = await this.ctx.db.transaction().execute(async (trx) => {
      const current = await findCampaign(trx, id, { forUpdate: true });
      if (!current) throw new AppError('campaign_not_found');
      if (current.status === to) return { campaign: current, approval: null };
      if (from && !from.includes(current.status)) {
        throw new AppError(
          'invalid_status_transition',
          `only a ${from.join(' or ')} campaign can go to ${to}`,
          {
            from: current.status,
            to,
          },
        );
      }
      assertTransition(current.status, to);
      const rules = approvalRulesTripped(this.approvals.policy, current, { ...current, status: to });
      if (rules.length > 0) {
        const approval = await this.requestApproval(
          trx,
          'campaign.update',
          current,
          { status: to },
          rules,
          actor,
          reason,
          now,
        );
        return { campaign: current, approval };
      }
      return { campaign: await this.transition(trx, current, to, actor, reason, now), approval: null };
    });
    this.ctx.afterCommit();
    return change;
  }

  /**
   * Pause or resume inside the caller's transaction, so a remediation's change and its record commit
   * together. Null (and nothing changed) when the campaign is missing or not in one of `from`.
   */
  async transitionIn(
    trx: Kysely<Database>,
    id: string,
    from: readonly CampaignStatus[],
    to: CampaignStatus,
    actor: Actor,
    reason: string,
    now: Date,
  ): Promise<{ before: CampaignRecord; after: CampaignRecord } | null> {
    const current = await findCampaign(trx, id, { forUpdate: true });
    if (!current || !from.includes(current.status)) return null;
    return { before: current, after: await this.transition(trx, current, to, actor, reason, now) };
  }

  /**
   * Throttle (or lift the throttle on) a campaign. The throttle is a term (it bumps the version, so
   * redemptions in flight re-read it) that the approval policy does not judge: a throttle only slows
   * spending, so on-call sets it alone.
   */
  async setThrottle(
    id: string,
    perMinute: number | null,
    actor: Actor,
    reason: string,
  ): Promise<CampaignRecord> {
    const now = this.ctx.clock.now();
    const campaign = await this.ctx.db.transaction().execute(async (trx) => {
      const current = await findCampaign(trx, id, { forUpdate: true });
      if (!current) throw new AppError('campaign_not_found');
      if (current.status === 'ended') throw new AppError('campaign_not_editable');
      const updated = await updateCampaignFields(trx, id, { ...current, throttlePerMinute: perMinute }, now);
      await appendEvents(
        trx,
        [{ type: 'campaign.updated', aggregateId: id, payload: { campaign: updated, actor } }],
        now,
      );
      await insertAudit(
        trx,
        { actor, action: 'campaign.throttled', targetId: id, reason, details: { per_minute: perMinute } },
        now,
      );
      return updated;
    });
    this.ctx.afterCommit();
    return campaign;
  }

  /**
   * Apply an approved change inside the approval's transaction, through the same path as a direct
   * change, as `approver` with the requester recorded. Null when the campaign changed since the request
   * (another version or status): the approver judged terms that no longer stand.
   */
  async applyApproved(
    trx: Kysely<Database>,
    approval: ApprovalRecord,
    approver: Actor,
    now: Date,
  ): Promise<CampaignRecord | null> {
    const current = await findCampaign(trx, approval.targetId, { forUpdate: true });
    if (!current) throw new AppError('campaign_not_found');
    if (current.version !== approval.targetVersion || current.status !== approval.targetStatus) return null;
    return this.apply(trx, current, decodePatch(approval.change), approver, approval.reason, now, {
      approvalId: approval.id,
      requestedBy: approval.requestedBy,
    });
  }

  /** The campaign's guarded terms as `patch` would leave them; refuses a patch that cannot apply. */
  private preview(current: CampaignRecord, patch: CampaignPatch) {
    if (current.status === 'ended') throw new AppError('campaign_not_editable');
    const status = patch.status ?? current.status;
    if (status !== current.status) assertTransition(current.status, status);
    const fields = this.merged(current, patch);
    checkFields(fields);
    return { ...fields, status };
  }

  private merged(current: CampaignRecord, config: CampaignPatch): CampaignFields {
    return {
      name: keep(config.name, current.name),
      currency: current.currency,
      discount: keep(config.discount, current.discount),
      startsAt: keep(config.startsAt, current.startsAt),
      endsAt: keep(config.endsAt, current.endsAt),
      redemptionCap: keep(config.redemptionCap, current.redemptionCap),
      budgetMinor: keep(config.budgetMinor, current.budgetMinor),
      perCustomerCap: keep(config.perCustomerCap, current.perCustomerCap),
      perPersonCap: keep(config.perPersonCap, current.perPersonCap),
      throttlePerMinute: keep(config.throttlePerMinute, current.throttlePerMinute),
      minOrderMinor: keep(config.minOrderMinor, current.minOrderMinor),
      eligibility: { ...current.eligibility, ...config.eligibility },
      metadata: keep(config.metadata, current.metadata),
      plannedPeaks: keep(config.plannedPeaks, current.plannedPeaks),
    };
  }

  /** Apply a patch to the locked campaign: terms first (one version bump), then the status. */
  private async apply(
    trx: Kysely<Database>,
    current: CampaignRecord,
    patch: CampaignPatch,
    actor: Actor,
    reason: string | null,
    now: Date,
    via?: ApprovedBy,
  ): Promise<CampaignRecord> {
    if (current.status === 'ended') throw new AppError('campaign_not_editable');
    const { status, ...config } = patch;
    let campaign = current;
    if (Object.values(config).some((v) => v !== undefined)) {
      const fields = this.merged(current, config);
      checkFields(fields);
      campaign = await updateCampaignFields(trx, current.id, fields, now);
      await appendEvents(
        trx,
        [{ type: 'campaign.updated', aggregateId: current.id, payload: { campaign, actor } }],
        now,
      );
      await insertAudit(
        trx,
        {
          actor,
          action: 'campaign.updated',
          targetId: current.id,
          reason,
          details: {
            changes: changedTerms(current, campaign),
            version: { from: current.version, to: campaign.version },
            ...approvedDetails(via),
          },
        },
        now,
      );
    }
    if (status !== undefined && status !== campaign.status) {
      campaign = await this.transition(trx, campaign, status, actor, reason, now, via);
    }
    return campaign;
  }

  /** Record a change that waits for a second key: the approval row, its event and its audit entry. */
  private async requestApproval(
    trx: Kysely<Database>,
    kind: ApprovalKind,
    campaign: CampaignRecord,
    change: Record<string, unknown>,
    rules: ApprovalRule[],
    actor: Actor,
    reason: string | null,
    now: Date,
  ): Promise<ApprovalRecord> {
    const approval = await insertApproval(trx, {
      id: newId('approval', now.getTime()),
      kind,
      targetId: campaign.id,
      targetVersion: campaign.version,
      targetStatus: campaign.status,
      change,
      rules,
      reason,
      requestedBy: actor,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.approvals.expiresAfterMs),
    });
    await appendEvents(
      trx,
      [{ type: 'approval.requested', aggregateId: approval.id, payload: { approval, actor } }],
      now,
    );
    await insertAudit(
      trx,
      {
        actor,
        action: 'approval.requested',
        targetId: approval.id,
        reason,
        details: { kind, campaign_id: campaign.id, change, rules },
      },
      now,
    );
    return approval;
  }

  private async transition(
    trx: Kysely<Database>,
    current: CampaignRecord,
    to: CampaignStatus,
    actor: Actor,
    reason: string | null,
    now: Date,
    via?: ApprovedBy,
  ): Promise<CampaignRecord> {
    assertTransition(current.status, to);
    const updated = await setCampaignStatus(trx, current.id, current.status, to, now);
    if (!updated) throw new AppError('invalid_status_transition', 'the campaign changed status concurrently');
    const type =
      to === 'paused'
        ? 'campaign.paused'
        : current.status === 'paused' && to === 'active'
          ? 'campaign.resumed'
          : 'campaign.status_changed';
    await appendEvents(
      trx,
      [{ type, aggregateId: current.id, payload: { from: current.status, to, actor, reason } }],
      now,
    );
    await insertAudit(
      trx,
      {
        actor,
        action: `campaign.${to}`,
        targetId: current.id,
        reason,
        details: { from: current.status, ...approvedDetails(via) },
      },
      now,
    );
    return updated;
  }
}

function assertTransition(from: CampaignStatus, to: CampaignStatus): void {
  if (!canTransition(from, to)) {
    throw new AppError('invalid_status_transition', `a campaign cannot go from ${from} to ${to}`, {
      from,
      to,
    });
  }
}
