/**
 * Loyalty points and their conversion into coupons (the design in the product document): a single-use
 * fixed-amount coupon bound to the customer, valid for a year, made under a conversion program whose
 * coupons all belong to one campaign (so they are validated, redeemed, rolled back and accounted for
 * exactly like every other code).
 */
import { randomBytes } from 'node:crypto';
import { normalizeCode } from '../domain/codes.js';
import {
  addMonthsUtc,
  type ConversionPolicy,
  checkCodeFormat,
  checkConversion,
  couponAmountMinor,
  DEFAULT_CODE_FORMAT,
  DEFAULT_POLICY,
  definesTier,
  formatCouponCode,
  knownTiers,
  maxCouponAmountMinor,
  utcDay,
} from '../domain/points.js';
import { AppError } from '../errors.js';
import { requestFingerprint } from '../lib/fingerprint.js';
import { newId } from '../lib/ids.js';
import { decisionRecord, type RiskDecision } from '../risk/engine.js';
import type { RequestContextInput } from '../security/request-context.js';
import { insertCampaign } from '../store/campaigns.js';
import { appendEvents } from '../store/outbox.js';
import {
  applyPoints,
  type Conversion,
  convertPoints,
  expiredRefundable,
  findConversionByKey,
  findProgram,
  insertProgram,
  listMovements,
  listPrograms,
  listWallet,
  type PointsMovement,
  type PointsProgram,
  pointsSummary,
  refundExpired,
  type WalletEntry,
} from '../store/points.js';
import type { CodeRecord } from '../store/rows.js';
import { findConversionDecision, insertLoyaltyDecision, type LoyaltyDecision } from '../store/takeover.js';
import type { PatternIndex } from './code-patterns.js';
import type { Actor, ServiceContext } from './context.js';
import {
  conversionSubject,
  type LoyaltyContext,
  type LoyaltyGuard,
  WALLET_SUBJECT,
} from './loyalty-guard.js';

export interface ProgramInput {
  name: string;
  currency: string;
  policy?: Partial<ConversionPolicy>;
  codeFormat?: string | undefined;
  refundOnExpiry?: boolean | undefined;
}

export type WalletStatus = 'unused' | 'used' | 'expired' | 'revoked';

export interface WalletCoupon {
  code: CodeRecord;
  amountMinor: number | null;
  currency: string;
  expiresAt: Date | null;
  status: WalletStatus;
  usedAt: Date | null;
}

const MAX_CODE_DRAWS = 8;

/** Who asks for a loyalty operation, and from where (the account-takeover defenses read it). */
export interface LoyaltyAccess {
  context?: RequestContextInput | undefined;
  /** The proof of a step-up after a `challenge_required` (trusted callers only: see the route). */
  stepUp?: { challenge: string; method: string } | undefined;
  channel?: 'checkout' | 'storefront';
}

/** A conversion or wallet read stopped by the rules; the route answers 428 or 422. */
export function loyaltyRefusal(decision: RiskDecision, challenge: { token: string; expiresAt: Date } | null) {
  if (challenge) {
    return new AppError('challenge_required', 'verify the customer, then retry with step_up', {
      challenge: { token: challenge.token, expires_at: challenge.expiresAt.toISOString() },
      decision: decisionRecord(decision),
    });
  }
  return new AppError('blocked_by_rule', undefined, { decision: decisionRecord(decision) });
}

export class PointsService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly patterns: PatternIndex,
    /** The account-takeover path; absent (no rules run) only in hand-built services of tests. */
    private readonly guard?: LoyaltyGuard,
  ) {}

  async createProgram(input: ProgramInput, actor: Actor): Promise<PointsProgram> {
    const policy: ConversionPolicy = { ...DEFAULT_POLICY, ...input.policy };
    const codeFormat = input.codeFormat ?? DEFAULT_CODE_FORMAT;
    const problem = checkCodeFormat(codeFormat, {
      maxPoints: policy.maxPointsPerConversion,
      maxAmountMinor: maxCouponAmountMinor(policy),
    });
    if (problem) throw new AppError('validation_failed', `code_format: ${problem.replaceAll('_', ' ')}`);
    if (policy.maxPointsPerConversion < policy.minPoints) {
      throw new AppError('validation_failed', 'max_points_per_conversion must be at least min_points');
    }
    if (
      policy.minPoints % policy.stepPoints !== 0 ||
      policy.maxPointsPerConversion % policy.stepPoints !== 0
    ) {
      throw new AppError(
        'validation_failed',
        'min_points and max_points_per_conversion must be multiples of step_points',
      );
    }
    const now = this.ctx.clock.now();
    const program = await this.ctx.db.transaction().execute(async (trx) => {
      // The campaign that holds this program's coupons: each coupon carries its own amount and expiry.
      const campaign = await insertCampaign(
        trx,
        newId('campaign', now.getTime()),
        'active',
        {
          name: `Points: ${input.name}`,
          currency: input.currency,
          discount: { type: 'fixed_amount', amountMinor: 0 },
          startsAt: now,
          endsAt: null,
          redemptionCap: null,
          budgetMinor: null,
          perCustomerCap: null,
          perPersonCap: null,
          throttlePerMinute: null,
          minOrderMinor: null,
          eligibility: { customerIds: null, segments: null, regions: null, firstOrderOnly: false },
          metadata: { kind: 'points_program' },
          plannedPeaks: [],
        },
        now,
      );
      const created = await insertProgram(
        trx,
        {
          id: newId('program', now.getTime()),
          name: input.name,
          campaignId: campaign.id,
          currency: input.currency,
          policy,
          codeFormat,
          refundOnExpiry: input.refundOnExpiry ?? false,
        },
        now,
      );
      await appendEvents(
        trx,
        [
          { type: 'campaign.created', aggregateId: campaign.id, payload: { campaign, actor } },
          { type: 'points.program_created', aggregateId: created.id, payload: { program: created, actor } },
        ],
        now,
      );
      return created;
    });
    this.ctx.afterCommit();
    return program;
  }

  async getProgram(id: string): Promise<PointsProgram> {
    const program = await findProgram(this.ctx.db, id);
    if (!program) throw new AppError('points_program_not_found');
    return program;
  }

  listPrograms(): Promise<PointsProgram[]> {
    return listPrograms(this.ctx.db);
  }

  /** Credit (earn) or debit points; idempotent by key; a debit never takes the balance below zero. */
  async apply(
    customerId: string,
    change: { kind: 'credit' | 'debit'; points: number; reason: string },
    key: string,
  ): Promise<{ movement: PointsMovement; replayed: boolean }> {
    const now = this.ctx.clock.now();
    const print = requestFingerprint([customerId, change.kind, change.points, change.reason]);
    const outcome = await applyPoints(this.ctx.db, {
      customerId,
      ...change,
      key,
      fingerprint: print,
      eventId: newId('event', now.getTime()),
      now,
    });
    if (outcome.outcome === 'refused') throw new AppError('insufficient_points');
    if (outcome.outcome === 'replayed' && outcome.movement.requestFingerprint !== print) {
      throw new AppError(
        'idempotency_key_reused',
        'this Idempotency-Key was first used for a different points change',
      );
    }
    if (outcome.outcome === 'applied') this.ctx.afterCommit();
    return { movement: outcome.movement, replayed: outcome.outcome === 'replayed' };
  }

  /**
   * Convert points into a coupon bound to the customer; idempotent by key. A new conversion passes the
   * risk rules over its context and the customer's history: `block` refuses it, `challenge` answers
   * 428 with a token bound to this customer and key (the retry with the same key and the step-up
   * converts once), `review` converts and flags the decision. A repeat returns the first result.
   */
  async convert(
    customerId: string,
    request: { programId: string; points: number; tier?: string | undefined },
    key: string,
    access: LoyaltyAccess = {},
  ): Promise<{
    conversion: Conversion;
    code: CodeRecord;
    replayed: boolean;
    /** The stored form of the decision that let it through (a replay reads it back); null without rules. */
    decision: Record<string, unknown> | null;
  }> {
    const program = await this.getProgram(request.programId);
    const print = requestFingerprint([customerId, request.programId, request.points, request.tier ?? null]);
    const previous = await findConversionByKey(this.ctx.db, customerId, key);
    if (previous && previous.requestFingerprint !== print) {
      throw new AppError(
        'idempotency_key_reused',
        'this Idempotency-Key was first used for a different conversion',
      );
    }
    const now = this.ctx.clock.now();
    const day = utcDay(now);
    let decided: { decision: RiskDecision; record: LoyaltyDecision; context: LoyaltyContext } | null = null;
    if (!previous) {
      if (request.tier !== undefined && !definesTier(program.policy, request.tier)) {
        const known = knownTiers(program.policy);
        throw new AppError(
          'unknown_tier',
          `the program defines no tier "${request.tier}"; its tiers are: ${known.length > 0 ? known.join(', ') : '(none)'}`,
          { tier: request.tier, known_tiers: known },
        );
      }
      const context = this.guard?.context(access.context) ?? null;
      const facts = context && this.guard ? await this.guard.facts(customerId, context, day, now) : null;
      const { balance, convertedToday } = facts ?? (await pointsSummary(this.ctx.db, customerId, day));
      const refusal = checkConversion(program.policy, request.points, convertedToday);
      // A request with this key may have committed after the lookup above, spending this very balance
      // or day's room: then the key's answer is that first result (replayed below), not a refusal.
      if (
        (refusal || balance < request.points) &&
        !(await findConversionByKey(this.ctx.db, customerId, key))
      ) {
        if (refusal)
          throw new AppError(refusal, undefined, { limits: limitsOf(program.policy, convertedToday) });
        throw new AppError('insufficient_points', undefined, { balance });
      }
      if (context && facts && this.guard) {
        decided = await this.decideConversion(customerId, program, request, key, access, context, facts, now);
      }
    }
    const amountMinor = couponAmountMinor(program.policy, request.points, request.tier);
    const expiresAt = addMonthsUtc(now, program.policy.validityMonths);
    for (let draw = 1; draw <= MAX_CODE_DRAWS; draw++) {
      const code = formatCouponCode(
        program.codeFormat,
        { customerId, points: request.points, amountMinor },
        randomBytes,
      );
      const normalized = normalizeCode(code);
      if (normalized === null)
        throw new AppError('validation_failed', 'the program code format yields an invalid code');
      if (!this.patterns.mayExist(normalized)) continue;
      const outcome = await convertPoints(
        this.ctx.db,
        {
          id: newId('conversion', now.getTime()),
          eventId: newId('event', now.getTime()),
          key,
          fingerprint: print,
          customerId,
          programId: program.id,
          points: request.points,
          amountMinor,
          currency: program.currency,
          dailyLimit: program.policy.dailyLimitPoints,
          utcDay: day,
          codeId: newId('code', now.getTime()),
          code,
          normalized,
          campaignId: program.campaignId,
          expiresAt,
          now,
        },
        decided?.record,
      );
      switch (outcome.outcome) {
        case 'converted':
          this.ctx.afterCommit();
          if (decided && this.guard) {
            // Only a verified conversion teaches the history: a thief's small first conversion must not
            // make its device the customer's.
            if (decided.decision.challengeSatisfied) this.guard.sight(customerId, decided.context, true, now);
            this.guard.risk.record({
              customerId,
              context: decided.context.resolved,
              campaignId: null,
              codeId: null,
              redemptionId: null,
              failed: false,
              now,
            });
          }
          return {
            conversion: outcome.conversion,
            code: outcome.code,
            replayed: false,
            decision: decided ? decisionRecord(decided.decision) : null,
          };
        case 'replayed':
          if (outcome.conversion.requestFingerprint !== print) throw new AppError('idempotency_key_reused');
          return {
            conversion: outcome.conversion,
            code: outcome.code,
            replayed: true,
            // A repeat answers like the first: with the decision stored with the conversion.
            decision: await findConversionDecision(this.ctx.db, customerId, outcome.conversion.id),
          };
        case 'refused':
          throw new AppError(outcome.reason);
        case 'code_collision':
          continue;
      }
    }
    throw new AppError('code_already_exists', `no free coupon code after ${MAX_CODE_DRAWS} draws; retry`);
  }

  /** The rules' decision on a new conversion; a block or challenge is recorded and thrown. */
  private async decideConversion(
    customerId: string,
    program: PointsProgram,
    request: { points: number; tier?: string | undefined },
    key: string,
    access: LoyaltyAccess,
    context: LoyaltyContext,
    facts: Awaited<ReturnType<LoyaltyGuard['facts']>>,
    now: Date,
  ): Promise<{ decision: RiskDecision; record: LoyaltyDecision; context: LoyaltyContext }> {
    const guard = this.guard as LoyaltyGuard;
    const channel = access.channel ?? 'checkout';
    const subject = conversionSubject(key);
    const decision = await guard.decide({
      operation: 'conversion',
      channel,
      customer: { id: customerId },
      context: context.resolved,
      loyalty: {
        programId: program.id,
        points: request.points,
        amountMinor: couponAmountMinor(program.policy, request.points, request.tier),
        currency: program.currency,
        balance: facts.balance,
      },
      extraFeatures: guard.features(facts, { now, points: request.points }),
      allowListed: false,
      stepUp: guard.stepUp(access.stepUp, customerId, subject),
      now,
    });
    const record: LoyaltyDecision = {
      id: decision.id,
      createdAt: now,
      operation: 'conversion',
      channel,
      customerId,
      programId: program.id,
      idempotencyKey: key,
      conversionId: null,
      action: decision.action,
      outcome: 'converted',
      context: Object.keys(context.resolved.stored).length > 0 ? context.resolved.stored : null,
      decision: decisionRecord(decision),
    };
    if (decision.action === 'block' || decision.action === 'challenge') {
      // Stopped: nothing changes; the decision is kept for analysts.
      await insertLoyaltyDecision(this.ctx.db, {
        ...record,
        outcome: decision.action === 'block' ? 'blocked' : 'challenged',
      });
      guard.risk.record({
        customerId,
        context: context.resolved,
        campaignId: null,
        codeId: null,
        redemptionId: null,
        failed: decision.action === 'block',
        now,
      });
      throw loyaltyRefusal(
        decision,
        decision.action === 'challenge' ? guard.challenge(customerId, subject, decision.id) : null,
      );
    }
    return { decision, record, context };
  }

  async summary(
    customerId: string,
    page: { limit: number; before?: number | undefined },
  ): Promise<{ balance: number; convertedToday: number; movements: PointsMovement[] }> {
    const day = utcDay(this.ctx.clock.now());
    const [totals, movements] = [
      await pointsSummary(this.ctx.db, customerId, day),
      await listMovements(this.ctx.db, customerId, page),
    ];
    return { ...totals, movements };
  }

  /**
   * The customer's coupons. With the takeover path, the read carries its context and passes the rules
   * (a thief's first look at a stolen account): every read's decision and context are recorded; `block`
   * and `challenge` refuse it (the step-up token is bound to the customer's wallet). A read never
   * teaches the customer's history — a thief could otherwise make a new device known by looking.
   */
  async wallet(
    customerId: string,
    page: { limit: number; before?: string | undefined },
    access: LoyaltyAccess = {},
  ): Promise<WalletCoupon[]> {
    const now = this.ctx.clock.now();
    if (this.guard) {
      const guard = this.guard;
      const context = guard.context(access.context);
      const facts = await guard.facts(customerId, context, utcDay(now), now);
      const channel = access.channel ?? 'checkout';
      const decision = await guard.decide({
        operation: 'wallet_read',
        channel,
        customer: { id: customerId },
        context: context.resolved,
        extraFeatures: guard.features(facts, { now }),
        allowListed: false,
        stepUp: guard.stepUp(access.stepUp, customerId, WALLET_SUBJECT),
        now,
      });
      const stopped = decision.action === 'block' || decision.action === 'challenge';
      await insertLoyaltyDecision(this.ctx.db, {
        id: decision.id,
        createdAt: now,
        operation: 'wallet_read',
        channel,
        customerId,
        programId: null,
        idempotencyKey: null,
        conversionId: null,
        action: decision.action,
        outcome:
          decision.action === 'block' ? 'blocked' : decision.action === 'challenge' ? 'challenged' : 'read',
        context: Object.keys(context.resolved.stored).length > 0 ? context.resolved.stored : null,
        decision: decisionRecord(decision),
      });
      guard.risk.record({
        customerId,
        context: context.resolved,
        campaignId: null,
        codeId: null,
        redemptionId: null,
        failed: decision.action === 'block',
        now,
      });
      if (stopped) {
        throw loyaltyRefusal(
          decision,
          decision.action === 'challenge' ? guard.challenge(customerId, WALLET_SUBJECT, decision.id) : null,
        );
      }
    }
    return (await listWallet(this.ctx.db, customerId, page)).map((entry) => walletCoupon(entry, now));
  }

  /** Return the points of expired, unused coupons of programs that refund on expiry. Safe on every node. */
  async refundExpired(batch = 200): Promise<number> {
    const now = this.ctx.clock.now();
    let refunded = 0;
    const failures: unknown[] = [];
    for (const id of await expiredRefundable(this.ctx.db, now, batch)) {
      // One conversion that fails must not hold back the rest of the batch.
      try {
        if (await refundExpired(this.ctx.db, id, newId('event', now.getTime()), now)) refunded += 1;
      } catch (err) {
        failures.push(err);
      }
    }
    // The refunds that committed are delivered at once, also when others failed.
    if (refunded > 0) this.ctx.afterCommit();
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} expiry refund(s) failed`);
    return refunded;
  }
}

function limitsOf(policy: ConversionPolicy, convertedToday: number) {
  return {
    min_points: policy.minPoints,
    step_points: policy.stepPoints,
    max_points_per_conversion: policy.maxPointsPerConversion,
    daily_limit_points: policy.dailyLimitPoints,
    converted_today: convertedToday,
  };
}

export function walletCoupon(entry: WalletEntry, now: Date): WalletCoupon {
  const { code } = entry;
  const expiresAt = code.expiresAt ?? entry.campaignEndsAt;
  const amountMinor =
    code.amountMinor ?? (entry.campaignDiscountType === 'fixed_amount' ? entry.campaignAmountMinor : null);
  let status: WalletStatus = 'unused';
  if (code.status === 'revoked') status = 'revoked';
  else if (code.maxUses !== null && code.uses >= code.maxUses) status = 'used';
  else if ((expiresAt !== null && now.getTime() >= expiresAt.getTime()) || entry.campaignStatus === 'ended')
    status = 'expired';
  return {
    code,
    amountMinor,
    currency: entry.currency,
    expiresAt,
    status,
    usedAt: status === 'used' ? entry.usedAt : null,
  };
}
