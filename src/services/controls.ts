/**
 * On-call and fraud controls that act in one call and are audited with who, when and why: revoking
 * every unredeemed code of a campaign or of one partner channel (a leaked batch), throttling a
 * campaign, capping a partner. Pausing lives with the campaign lifecycle.
 */
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { insertAudit } from '../store/audit.js';
import { findCampaign } from '../store/campaigns.js';
import {
  listPartners,
  type PartnerCap,
  personLinks,
  revokeUnredeemed,
  setPartnerCap,
  splitPerson,
} from '../store/controls.js';
import { appendEvents } from '../store/outbox.js';
import type { CampaignRecord } from '../store/rows.js';
import type { CampaignService } from './campaigns.js';
import type { Actor, ServiceContext } from './context.js';

export class ControlService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly campaigns: CampaignService,
  ) {}

  private async requireCampaign(id: string): Promise<CampaignRecord> {
    const campaign = await findCampaign(this.ctx.db, id);
    if (!campaign) throw new AppError('campaign_not_found');
    return campaign;
  }

  async revokeUnredeemed(
    campaignId: string,
    partner: string | null,
    actor: Actor,
    reason: string,
  ): Promise<number> {
    await this.requireCampaign(campaignId);
    const now = this.ctx.clock.now();
    const revoked = await this.ctx.db.transaction().execute(async (trx) => {
      const n = await revokeUnredeemed(trx, campaignId, partner, now);
      await insertAudit(
        trx,
        {
          actor,
          action: 'codes.revoked_unredeemed',
          targetId: campaignId,
          reason,
          details: { partner, revoked: n },
        },
        now,
      );
      await appendEvents(
        trx,
        [
          {
            type: 'code.bulk_revoked',
            aggregateId: campaignId,
            payload: { campaign_id: campaignId, partner, revoked: n, actor, reason },
          },
        ],
        now,
      );
      return n;
    });
    this.ctx.afterCommit();
    return revoked;
  }

  /**
   * An analyst's verdict that linked accounts are not one person: `customerIds` leave the person for a
   * new one, and the identifiers both sides shared stop linking (see splitPerson). Audited, evented.
   */
  async splitPerson(
    personId: string,
    customerIds: readonly string[],
    actor: Actor,
    reason: string,
  ): Promise<{ personId: string; newPersonId: string; moved: string[]; unlinked: number }> {
    const now = this.ctx.clock.now();
    const newPersonId = newId('person', now.getTime());
    const result = await this.ctx.db.transaction().execute(async (trx) => {
      const outcome = await splitPerson(trx, personId, customerIds, newPersonId);
      if (!outcome.ok) {
        if (outcome.reason === 'person_not_found') throw new AppError('person_not_found');
        const message =
          outcome.reason === 'not_in_person'
            ? 'names a customer who is not an account of this person'
            : 'names every account of the person; at least one must stay';
        throw new AppError('validation_failed', `body/customer_ids ${message}`, {
          errors: [{ field: 'body/customer_ids', message }],
        });
      }
      const details = { new_person_id: newPersonId, customer_ids: outcome.moved, unlinked: outcome.unlinked };
      await insertAudit(trx, { actor, action: 'person.split', targetId: personId, reason, details }, now);
      await appendEvents(
        trx,
        [
          {
            type: 'person.split',
            aggregateId: personId,
            payload: { person_id: personId, ...details, actor, reason },
          },
        ],
        now,
      );
      return outcome;
    });
    this.ctx.afterCommit();
    return { personId, newPersonId, moved: result.moved, unlinked: result.unlinked };
  }

  /** Throttling changes the campaign's terms (version), so redemptions in flight re-read it. */
  throttle(
    campaignId: string,
    perMinute: number | null,
    actor: Actor,
    reason: string,
  ): Promise<CampaignRecord> {
    return this.campaigns.setThrottle(campaignId, perMinute, actor, reason);
  }

  async capPartner(
    campaignId: string,
    partner: string,
    cap: number | null,
    actor: Actor,
    reason: string,
  ): Promise<PartnerCap[]> {
    await this.requireCampaign(campaignId);
    const now = this.ctx.clock.now();
    await this.ctx.db.transaction().execute(async (trx) => {
      await setPartnerCap(trx, campaignId, partner, cap);
      await insertAudit(
        trx,
        { actor, action: 'partner.capped', targetId: campaignId, reason, details: { partner, cap } },
        now,
      );
    });
    return listPartners(this.ctx.db, campaignId);
  }

  async partners(campaignId: string): Promise<PartnerCap[]> {
    await this.requireCampaign(campaignId);
    return listPartners(this.ctx.db, campaignId);
  }

  links(customerId: string) {
    return personLinks(this.ctx.db, customerId);
  }
}
