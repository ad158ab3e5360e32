/**
 * On-call and fraud controls that act in one call and are audited with who, when and why: revoking
 * every unredeemed code of a campaign or of one partner channel (a leaked batch), throttling a
 * campaign, capping a partner. Pausing lives with the campaign lifecycle.
 */
import { AppError } from '../errors.js';
import { insertAudit } from '../store/audit.js';
import { findCampaign } from '../store/campaigns.js';
import {
  listPartners,
  type PartnerCap,
  personLinks,
  revokeUnredeemed,
  setPartnerCap,
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
