import type { Kysely } from 'kysely';
import { type CampaignStatus, canTransition, type Eligibility } from '../domain/campaign.js';
import type { DiscountRule } from '../domain/money.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { insertAudit } from '../store/audit.js';
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

function checkFields(f: CampaignFields): void {
  if (f.endsAt !== null && f.endsAt.getTime() <= f.startsAt.getTime()) {
    throw new AppError('validation_failed', 'ends_at must be later than starts_at', {
      errors: [{ field: '/ends_at', message: 'must be later than starts_at' }],
    });
  }
}

export class CampaignService {
  constructor(private readonly ctx: ServiceContext) {}

  async create(input: CampaignInput, actor: Actor): Promise<CampaignRecord> {
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
    };
    checkFields(fields);
    const campaign = await this.ctx.db.transaction().execute(async (trx) => {
      const created = await insertCampaign(
        trx,
        newId('campaign', now.getTime()),
        input.status ?? 'draft',
        fields,
        now,
      );
      await appendEvents(
        trx,
        [{ type: 'campaign.created', aggregateId: created.id, payload: { campaign: created, actor } }],
        now,
      );
      return created;
    });
    this.ctx.afterCommit();
    return campaign;
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

  async update(id: string, patch: CampaignPatch, actor: Actor): Promise<CampaignRecord> {
    const now = this.ctx.clock.now();
    const { status, ...config } = patch;
    const campaign = await this.ctx.db.transaction().execute(async (trx) => {
      // The row lock orders this edit against concurrent edits and status changes.
      let current = await findCampaign(trx, id, { forUpdate: true });
      if (!current) throw new AppError('campaign_not_found');
      if (current.status === 'ended') throw new AppError('campaign_not_editable');
      if (Object.values(config).some((v) => v !== undefined)) {
        const fields: CampaignFields = {
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
        };
        checkFields(fields);
        current = await updateCampaignFields(trx, id, fields, now);
        await appendEvents(
          trx,
          [{ type: 'campaign.updated', aggregateId: id, payload: { campaign: current, actor } }],
          now,
        );
      }
      if (status !== undefined && status !== current.status) {
        current = await this.transition(trx, current, status, actor, null, now);
      }
      return current;
    });
    this.ctx.afterCommit();
    return campaign;
  }

  /**
   * Pause, resume or end. The redemption path reads the status inside its atomic statement, so the
   * change holds for the very next redemption on every node; nothing is cached across it.
   */
  async changeStatus(
    id: string,
    to: CampaignStatus,
    actor: Actor,
    reason: string | null,
    /** Only from these statuses (resume leaves only `paused`; it never activates a draft). */
    from?: readonly CampaignStatus[],
  ): Promise<CampaignRecord> {
    const now = this.ctx.clock.now();
    const campaign = await this.ctx.db.transaction().execute(async (trx) => {
      const current = await findCampaign(trx, id, { forUpdate: true });
      if (!current) throw new AppError('campaign_not_found');
      if (current.status === to) return current;
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
      return this.transition(trx, current, to, actor, reason, now);
    });
    this.ctx.afterCommit();
    return campaign;
  }

  private async transition(
    trx: Kysely<Database>,
    current: CampaignRecord,
    to: CampaignStatus,
    actor: Actor,
    reason: string | null,
    now: Date,
  ): Promise<CampaignRecord> {
    if (!canTransition(current.status, to)) {
      throw new AppError(
        'invalid_status_transition',
        `a campaign cannot go from ${current.status} to ${to}`,
        {
          from: current.status,
          to,
        },
      );
    }
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
      { actor, action: `campaign.${to}`, targetId: current.id, reason, details: { from: current.status } },
      now,
    );
    return updated;
  }
}
