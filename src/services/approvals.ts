/**
 * Two-person approval: a second key approves or rejects a risky campaign change that waits (the gate
 * is in services/campaigns.ts). The approved change is applied through the campaign service's own path
 * in the same transaction as the approval's status flip, so an approval applies at most once however
 * many approvers click at the same time.
 */
import type { Kysely } from 'kysely';
import { AppError } from '../errors.js';
import {
  type ApprovalRecord,
  type ApprovalStatus,
  decideApproval,
  expireDue,
  findApproval,
  listApprovals,
} from '../store/approvals.js';
import { insertAudit } from '../store/audit.js';
import { appendEvents } from '../store/outbox.js';
import type { CampaignRecord } from '../store/rows.js';
import type { Database } from '../store/schema.js';
import type { CampaignService } from './campaigns.js';
import type { Actor, ServiceContext } from './context.js';

/** The service's own actor in the audit trail (expiry is nobody's decision). */
const SYSTEM: Actor = 'promoguard';

export class ApprovalService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly campaigns: CampaignService,
  ) {}

  async list(filter: {
    limit: number;
    before?: string | undefined;
    status?: ApprovalStatus | undefined;
    targetId?: string | undefined;
  }): Promise<ApprovalRecord[]> {
    await this.expireDue();
    return listApprovals(this.ctx.db, filter);
  }

  async get(id: string): Promise<ApprovalRecord> {
    await this.expireDue();
    const approval = await findApproval(this.ctx.db, id);
    if (!approval) throw new AppError('approval_not_found');
    return approval;
  }

  /** Approve and apply the change, as `actor` (never the requester). */
  async approve(
    id: string,
    actor: Actor,
    note: string | null,
  ): Promise<{ approval: ApprovalRecord; campaign: CampaignRecord }> {
    await this.expireDue();
    const now = this.ctx.clock.now();
    const result = await this.ctx.db.transaction().execute(async (trx) => {
      const pending = await this.lockPending(trx, id, now);
      // Two keys, two people: the requester's own approval would make the rule one person again.
      if (pending.requestedBy === actor) {
        throw new AppError('self_approval_forbidden', 'the change must be approved by a different API key', {
          requested_by: pending.requestedBy,
        });
      }
      const campaign = await this.campaigns.applyApproved(trx, pending, actor, now);
      if (!campaign) {
        throw new AppError(
          'approval_stale',
          'the campaign changed since this change was requested; reject it and request it again',
          { target_version: pending.targetVersion, target_status: pending.targetStatus },
        );
      }
      const approval = await this.decide(trx, pending, 'approved', actor, note, now);
      return { approval, campaign };
    });
    this.ctx.afterCommit();
    return result;
  }

  /** Reject: the campaign stays as it is. The requester may reject (withdraw) their own request. */
  async reject(id: string, actor: Actor, note: string | null): Promise<ApprovalRecord> {
    await this.expireDue();
    const now = this.ctx.clock.now();
    const approval = await this.ctx.db.transaction().execute(async (trx) => {
      const pending = await this.lockPending(trx, id, now);
      return this.decide(trx, pending, 'rejected', actor, note, now);
    });
    this.ctx.afterCommit();
    return approval;
  }

  /**
   * The approval, locked and still open. The lock orders racing decisions: the second one sees the
   * first one's verdict and is refused.
   */
  private async lockPending(trx: Kysely<Database>, id: string, now: Date): Promise<ApprovalRecord> {
    const approval = await findApproval(trx, id, { forUpdate: true });
    if (!approval) throw new AppError('approval_not_found');
    if (approval.status === 'expired' || (approval.status === 'pending' && approval.expiresAt <= now)) {
      throw new AppError('approval_expired', undefined, { expires_at: approval.expiresAt.toISOString() });
    }
    if (approval.status !== 'pending') {
      throw new AppError('approval_already_decided', `the approval was already ${approval.status}`, {
        approval_status: approval.status,
        decided_by: approval.decidedBy,
      });
    }
    return approval;
  }

  private async decide(
    trx: Kysely<Database>,
    pending: ApprovalRecord,
    status: 'approved' | 'rejected',
    actor: Actor,
    note: string | null,
    now: Date,
  ): Promise<ApprovalRecord> {
    const decided = await decideApproval(trx, pending.id, { status, decidedBy: actor, note }, now);
    // Unreachable under the row lock; a guard against a store that would let two verdicts land.
    if (!decided) throw new AppError('approval_already_decided');
    await this.record(trx, decided, actor, now);
    return decided;
  }

  /** The decision's audit entry and event. */
  private async record(trx: Kysely<Database>, approval: ApprovalRecord, actor: Actor, now: Date) {
    const status = approval.status as 'approved' | 'rejected' | 'expired';
    await insertAudit(
      trx,
      {
        actor,
        action: `approval.${status}`,
        targetId: approval.id,
        reason: approval.note,
        details: {
          kind: approval.kind,
          campaign_id: approval.targetId,
          change: approval.change,
          rules: approval.rules,
          requested_by: approval.requestedBy,
        },
      },
      now,
    );
    await appendEvents(
      trx,
      [{ type: `approval.${status}`, aggregateId: approval.id, payload: { approval, actor } }],
      now,
    );
  }

  /**
   * Approvals past their expiry become `expired`, audited and evented once (the conditional update
   * lets one node flip each). Run before every read and decision, so no list shows a lapsed request
   * as pending.
   */
  private async expireDue(): Promise<void> {
    const now = this.ctx.clock.now();
    const expired = await this.ctx.db.transaction().execute(async (trx) => {
      const lapsed = await expireDue(trx, now);
      for (const approval of lapsed) await this.record(trx, approval, SYSTEM, now);
      return lapsed.length;
    });
    if (expired > 0) this.ctx.afterCommit();
  }
}
