/**
 * Validation and redemption. Both pass the defenses first (lists, rate limits, lockouts), then read
 * the code, its campaign, the customer's and person's use counts and the risk facts in one query and
 * decide eligibility with the pure domain function, then the risk engine's rules. A redemption then
 * issues one atomic statement that re-checks every cap and the campaign's status and version under row
 * locks (and stores the risk decision with the redemption), so the counters read for the decision may
 * be stale without ever letting a cap be exceeded.
 */
import { type Cart, type CustomerFacts, decide, type RefusalReason } from '../domain/campaign.js';
import { normalizeCode } from '../domain/codes.js';
import { addressBlockKeys } from '../domain/detection/address-blocks.js';
import { utcDay } from '../domain/points.js';
import type { FeatureValues } from '../domain/risk.js';
import { AppError } from '../errors.js';
import type { Attempt, AttemptKind, AttemptOutcome } from '../events/telemetry.js';
import { requestFingerprint } from '../lib/fingerprint.js';
import { newId } from '../lib/ids.js';
import { decisionRecord, type RiskDecision, type RiskEngine, type RiskSubject } from '../risk/engine.js';
import { identityKeys, type RequestContextInput, type ResolvedContext } from '../security/request-context.js';
import type { StepUpChallenges } from '../security/step-up.js';
import { ContextReader, type RedemptionContext } from '../store/redemption-context.js';
import {
  findRedemption,
  findRedemptionByKey,
  listRedemptions,
  redeem,
  rollback,
} from '../store/redemptions.js';
import { insertStoppedDecision } from '../store/risk.js';
import type { Redemption } from '../store/rows.js';
import type { PatternIndex } from './code-patterns.js';
import type { ServiceContext } from './context.js';
import { type Admission, type Defenses, isFailedAttempt } from './defenses.js';
import type { LoyaltyGuard } from './loyalty-guard.js';
import { holdRelatedRedemptions } from './related-holds.js';
import type { RemediationGate } from './remediation-gate.js';

export interface CheckoutRequest {
  code: string;
  customer: CustomerFacts;
  cart: Cart;
  /** The cart's lines: no rule reads them yet, but they make the request what it is (idempotency). */
  items?: readonly { sku: string; quantity: number; unitPriceMinor: number }[] | undefined;
  orderId?: string | undefined;
  context?: RequestContextInput | undefined;
  /** The proof of a step-up the merchant performed after a `challenge_required`. */
  stepUp?: { challenge: string; method: string } | undefined;
}

export interface CallerOptions {
  /**
   * An untrusted caller (a storefront): every refusal looks the same to it, so the check-symbol
   * shortcut is skipped — an unknown code then costs the same database read as a known one and the
   * answer's timing does not tell them apart.
   */
  untrusted?: boolean;
}

export type ValidationResult =
  | {
      valid: true;
      discountMinor: number;
      currency: string;
      campaignId: string;
      codeId: string;
      decision: RiskDecision;
    }
  | { valid: false; reason: RefusalReason; decision?: RiskDecision | undefined };

export type RedeemResult =
  | { ok: true; redemption: Redemption; replayed: boolean; decision: RiskDecision | null }
  | { ok: false; reason: RefusalReason; decision?: RiskDecision | undefined }
  | {
      ok: false;
      reason: 'challenge_required';
      challenge: { token: string; expiresAt: Date };
      decision: RiskDecision;
    };

/** What an attempt read about its code, for its telemetry record (refusals included). */
interface Seen {
  campaignId: string | null;
  codeId: string | null;
  batchId: string | null;
  partner: string | null;
  currency: string | null;
  singleUse: boolean | null;
}

function unseen(): Seen {
  return { campaignId: null, codeId: null, batchId: null, partner: null, currency: null, singleUse: null };
}

function see(seen: Seen, context: RedemptionContext): void {
  seen.campaignId = context.campaign.id;
  seen.codeId = context.code.id;
  seen.batchId = context.code.batchId;
  seen.partner = context.code.partner;
  seen.singleUse = context.code.maxUses === 1;
  seen.currency = context.campaign.currency;
}

/** The fired rules of a decision, as telemetry carries them. */
function decisionSummary(d: RiskDecision | null | undefined): Attempt['decision'] {
  if (!d) return null;
  return {
    action: d.action,
    rules: d.rules
      .filter((r) => r.result === 'fired')
      .map((r) => ({ id: r.id, mode: r.mode, action: r.action })),
  };
}

/** A campaign edited between our read and our write is re-read and re-decided this many times. */
const MAX_ATTEMPTS = 3;

/** Marks fingerprints of the whole request; one without it was made from the first six fields. */
const WHOLE_REQUEST = 'v2:';

/**
 * What makes two redemption requests the same request for an idempotency key: all of it, normalized
 * (as Stripe compares a retry's parameters) — the code as matched, the customer, the cart and its
 * lines, the order, and the request context in its stored form (identifiers as keyed hashes, so no
 * personal data enters the digest in the clear). Only a step-up proof is left out: it is a credential
 * a retry may renew, not part of what is asked.
 */
export function fingerprint(
  normalizedCode: string,
  req: CheckoutRequest,
  context: Record<string, unknown>,
): string {
  const c = req.customer;
  return `${WHOLE_REQUEST}${requestFingerprint([
    normalizedCode,
    [c.id, c.segment ?? null, c.region ?? null, c.firstOrder ?? null],
    [req.cart.currency, req.cart.subtotalMinor, req.cart.shippingMinor],
    (req.items ?? []).map((i) => [i.sku, i.quantity, i.unitPriceMinor]),
    req.orderId ?? null,
    Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ])}`;
}

/** The first six fields, for redemptions stored before fingerprints covered the whole request. */
function fieldsFingerprint(normalizedCode: string, req: CheckoutRequest): string {
  return requestFingerprint([
    normalizedCode,
    req.customer.id,
    req.cart.currency,
    req.cart.subtotalMinor,
    req.cart.shippingMinor,
    req.orderId ?? null,
  ]);
}

/** How a redemption's answer reads as telemetry. */
function redemptionTelemetry(
  result: RedeemResult,
): Pick<Attempt, 'outcome' | 'reason' | 'amountMinor' | 'decision' | 'redemptionId'> {
  if (result.ok) {
    return {
      outcome: (result.replayed ? 'replayed' : 'redeemed') satisfies AttemptOutcome,
      reason: null,
      amountMinor: result.replayed ? 0 : result.redemption.discountMinor,
      decision: decisionSummary(result.decision),
      redemptionId: result.replayed ? null : result.redemption.id,
    };
  }
  return {
    outcome: result.reason === 'challenge_required' ? 'challenged' : 'refused',
    reason: result.reason === 'challenge_required' ? null : result.reason,
    amountMinor: 0,
    decision: decisionSummary(result.decision),
  };
}

export class RedemptionService {
  /** The context reads of requests that arrive together share a statement. */
  readonly contexts: ContextReader;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly patterns: PatternIndex,
    private readonly defenses: Defenses,
    private readonly risk: RiskEngine,
    private readonly stepUps: StepUpChallenges,
    /** Remediations in force (throttles, step-ups, review holds, guessing limits); none when absent. */
    private readonly remediations?: RemediationGate,
    /** The account-takeover path: history features for loyalty coupons, and the history itself. */
    private readonly loyalty?: LoyaltyGuard,
    /** An identifier shared by this many other customers links nobody (IDENTITY_SHARED_LIMIT). */
    private readonly identity: { sharedLimit: number | null } = { sharedLimit: null },
  ) {
    this.contexts = new ContextReader(ctx.db);
  }

  /**
   * The takeover features of an attempt on a coupon made from points (the customer's history: device,
   * network, card and hour new for it; the coupon's age). Other codes skip the read: they are not what
   * a thief drains an account into.
   */
  private async takeoverFeatures(
    customerId: string,
    admission: Admission,
    context: RedemptionContext,
    now: Date,
  ): Promise<FeatureValues | undefined> {
    if (!this.loyalty) return undefined;
    if (context.code.customerId === null || context.campaign.metadata.kind !== 'points_program')
      return undefined;
    const keys = this.loyalty.keys(admission.context);
    const facts = await this.loyalty.facts(customerId, keys, utcDay(now), now);
    return this.loyalty.features(facts, { now, couponCreatedAt: context.code.createdAt });
  }

  /** The step-up method when the request carries a valid proof for this customer and code. */
  private stepUp(req: CheckoutRequest, normalized: string): string | null {
    if (!req.stepUp) return null;
    return this.stepUps.satisfies(req.stepUp.challenge, req.customer.id, normalized)
      ? req.stepUp.method
      : null;
  }

  /** The risk engine's decision on an eligible attempt. */
  private async decideRisk(
    req: CheckoutRequest,
    admission: Admission,
    context: RedemptionContext,
    normalized: string,
    discountMinor: number,
    now: Date,
    kind: Pick<RiskSubject, 'operation' | 'channel' | 'decisionId'>,
  ): Promise<RiskDecision> {
    const remediations = await this.remediations?.rules(
      context.campaign.id,
      context.code.id,
      admission.context.accountCreatedAt,
      now,
    );
    const extraFeatures = await this.takeoverFeatures(req.customer.id, admission, context, now);
    return this.risk.decide({
      ...(remediations && remediations.length > 0 ? { remediations } : {}),
      extraFeatures,
      ...kind,
      customer: req.customer,
      cart: req.cart,
      context: admission.context,
      campaign: context.campaign,
      code: context.code,
      codeKey: this.defenses.codeKey(normalized),
      discountMinor,
      facts: context.risk,
      allowListed: admission.allowed,
      stepUp: this.stepUp(req, normalized),
      now,
    });
  }

  /** Count the attempt into the risk features (after its decision, never into its own). */
  private record(
    admission: Admission,
    customerId: string,
    result: RedeemResult | ValidationResult,
    seen: Seen,
  ): void {
    const redemption = 'redemption' in result && result.ok && !result.replayed ? result.redemption : null;
    const failed =
      ('valid' in result && !result.valid && isFailedAttempt(result.reason)) ||
      ('ok' in result &&
        !result.ok &&
        result.reason !== 'challenge_required' &&
        isFailedAttempt(result.reason));
    this.risk.record({
      customerId,
      context: admission.context,
      campaignId: redemption?.campaignId ?? null,
      codeId: redemption?.codeId ?? null,
      redemptionId: redemption?.id ?? null,
      partner: redemption ? seen.partner : null,
      failed,
      now: this.ctx.clock.now(),
    });
  }

  /** The code's canonical text, or null when it cannot exist (refused before any database read). */
  private screen(code: string, options: CallerOptions): string | null {
    const normalized = normalizeCode(code);
    if (normalized === null) return null;
    if (!options.untrusted && !this.patterns.mayExist(normalized)) return null;
    return normalized;
  }

  async validate(req: CheckoutRequest, options: CallerOptions = {}): Promise<ValidationResult> {
    const started = performance.now();
    const seen = unseen();
    let admission: Admission;
    try {
      admission = await this.defenses.admit(req.customer.id, req.context);
      await this.remediations?.admitGuess(
        normalizeCode(req.code),
        req.customer.id,
        admission.context,
        this.ctx.clock.now(),
      );
    } catch (err) {
      this.emitLimited('validation', req, seen, started, options, err);
      throw err;
    }
    const result = await this.decideValidation(req, admission, options, seen);
    this.record(admission, req.customer.id, result, seen);
    if (!result.valid && isFailedAttempt(result.reason)) await this.recordGuess(req, admission);
    await this.defenses.settle(
      admission,
      result.valid ? { ok: true } : { ok: false, reason: result.reason },
      false,
    );
    this.emit('validation', req, admission.context, seen, started, options, {
      outcome: result.valid ? 'valid' : 'invalid',
      reason: result.valid ? null : result.reason,
      amountMinor: result.valid ? result.discountMinor : 0,
      decision: decisionSummary(result.decision),
    });
    return result;
  }

  private async decideValidation(
    req: CheckoutRequest,
    admission: Admission,
    options: CallerOptions,
    seen: Seen,
  ): Promise<ValidationResult> {
    if (admission.blocked) return { valid: false, reason: 'blocked' };
    const normalized = this.screen(req.code, options);
    if (normalized === null) return { valid: false, reason: 'code_not_found' };
    const keys = identityKeys(req.customer.id, admission.context);
    const now = this.ctx.clock.now();
    const { context } = await this.contexts.read({
      normalized,
      customerId: req.customer.id,
      idempotencyKey: null,
      identityKeys: keys,
      currency: req.cart.currency,
      now,
      sharedLimit: this.identity.sharedLimit,
      accountCreatedAt: admission.context.accountCreatedAt,
    });
    if (!context) return { valid: false, reason: 'code_not_found' };
    see(seen, context);
    const decision = decide({ ...context, customer: req.customer, cart: req.cart, now });
    if (!decision.eligible) return { valid: false, reason: decision.reason };
    const risk = await this.decideRisk(req, admission, context, normalized, decision.discountMinor, now, {
      operation: 'validation',
      channel: options.untrusted ? 'storefront' : 'checkout',
    });
    if (risk.action === 'block') return { valid: false, reason: 'blocked_by_rule', decision: risk };
    return {
      valid: true,
      discountMinor: decision.discountMinor,
      currency: context.campaign.currency,
      campaignId: context.campaign.id,
      codeId: context.code.id,
      decision: risk,
    };
  }

  async redeem(req: CheckoutRequest, idempotencyKey: string): Promise<RedeemResult> {
    const started = performance.now();
    const seen = unseen();
    let admission: Admission;
    try {
      admission = await this.defenses.admit(req.customer.id, req.context);
      await this.remediations?.admitGuess(
        normalizeCode(req.code),
        req.customer.id,
        admission.context,
        this.ctx.clock.now(),
      );
    } catch (err) {
      // A repeat of a redemption that went through returns it, even to a caller limited since: the
      // retry is the checkout backend's, and its answer must not change.
      const existing =
        err instanceof AppError ? await findRedemptionByKey(this.ctx.db, idempotencyKey) : null;
      if (!existing) {
        this.emitLimited('redemption', req, seen, started, {}, err);
        throw err;
      }
      return this.replay(
        existing,
        req,
        normalizeCode(req.code) ?? req.code,
        this.defenses.resolve(req.context),
      );
    }
    const result = await this.redeemAdmitted(req, idempotencyKey, admission, seen);
    if (result.ok && !result.replayed && this.loyalty) {
      // What went through teaches the customer's history (a verified step-up at once).
      this.loyalty.sight(
        req.customer.id,
        this.loyalty.keys(admission.context),
        result.decision?.challengeSatisfied === true,
        result.redemption.createdAt,
      );
    }
    if (!(result.ok && result.replayed)) {
      this.record(admission, req.customer.id, result, seen);
      if (!result.ok && result.reason !== 'challenge_required' && isFailedAttempt(result.reason))
        await this.recordGuess(req, admission);
      // A challenge is neither a success nor a failure of the caller's: it does not move the lockout.
      if (result.ok || result.reason !== 'challenge_required') {
        await this.defenses.settle(
          admission,
          result.ok ? { ok: true } : { ok: false, reason: result.reason },
          true,
        );
      }
    }
    if (result.ok && seen.campaignId === null) {
      // A replay answers from the stored redemption without reading its code.
      seen.campaignId = result.redemption.campaignId;
      seen.codeId = result.redemption.codeId;
      seen.currency = result.redemption.currency;
    }
    this.emit('redemption', req, admission.context, seen, started, {}, redemptionTelemetry(result));
    return result;
  }

  /** A failed attempt counts toward a guessing remediation's limit on its batch, if one is in force. */
  private recordGuess(req: CheckoutRequest, admission: Admission): Promise<void> {
    return (
      this.remediations?.recordGuess(
        normalizeCode(req.code),
        req.customer.id,
        admission.context,
        this.ctx.clock.now(),
      ) ?? Promise.resolve()
    );
  }

  /** Hands the attempt to the telemetry listeners (metrics, statistics, detectors). */
  private emit(
    kind: AttemptKind,
    req: CheckoutRequest,
    context: ResolvedContext | null,
    seen: Seen,
    started: number,
    options: CallerOptions,
    answer: Pick<Attempt, 'outcome' | 'reason' | 'amountMinor' | 'decision' | 'redemptionId'>,
  ): void {
    const telemetry = this.ctx.telemetry;
    if (!telemetry) return;
    const at = this.ctx.clock.now();
    const created = context?.accountCreatedAt ?? null;
    telemetry.emit({
      kind,
      at,
      ...answer,
      campaignId: seen.campaignId,
      codeId: seen.codeId,
      batchId: seen.batchId,
      partner: seen.partner,
      codeSingleUse: seen.singleUse,
      customerId: req.customer.id,
      currency: seen.currency ?? req.cart.currency,
      accountAgeHours: created ? (at.getTime() - created.getTime()) / 3_600_000 : null,
      ipKey: context?.ipKey ?? null,
      deviceKey: context?.deviceKey ?? null,
      paymentKey: context?.all.find((i) => i.type === 'payment')?.hash ?? null,
      addressBlocks: context && req.context?.ip ? addressBlockKeys(req.context.ip) : [],
      shippingKey: context?.all.find((i) => i.type === 'address')?.hash ?? null,
      storefront: options.untrusted === true,
      durationMs: performance.now() - started,
    });
  }

  /** An attempt refused by the attempt guard before anything was read. */
  private emitLimited(
    kind: AttemptKind,
    req: CheckoutRequest,
    seen: Seen,
    started: number,
    options: CallerOptions,
    err: unknown,
  ): void {
    if (!(err instanceof AppError) || err.code !== 'too_many_requests') return;
    const reason = typeof err.extensions.reason === 'string' ? err.extensions.reason : 'limited';
    const normalized = reason === 'locked' ? normalizeCode(req.code) : null;
    if (normalized) this.risk.recordLockedTry(this.defenses.codeKey(normalized), this.ctx.clock.now());
    this.emit(kind, req, null, seen, started, options, {
      outcome: 'limited',
      reason,
      amountMinor: 0,
      decision: null,
    });
  }

  private async redeemAdmitted(
    req: CheckoutRequest,
    idempotencyKey: string,
    admission: Admission,
    seen: Seen,
  ): Promise<RedeemResult> {
    const normalized = this.screen(req.code, {});
    const print = fingerprint(normalized ?? req.code, req, admission.context.stored);
    const replay = (existing: Redemption) =>
      this.replay(existing, req, normalized ?? req.code, admission.context);
    if (admission.blocked) {
      // A repeat returns the first answer even if the caller has been blocked since; anything else is
      // refused without reading the code (one indexed read, so a blocked caller costs little).
      const existing = await findRedemptionByKey(this.ctx.db, idempotencyKey);
      return existing ? replay(existing) : { ok: false, reason: 'blocked' };
    }
    const keys = identityKeys(req.customer.id, admission.context);
    for (let attempt = 1; ; attempt++) {
      const now = this.ctx.clock.now();
      const { context, existing } = await this.contexts.read({
        normalized: normalized ?? '',
        customerId: req.customer.id,
        idempotencyKey,
        identityKeys: keys,
        currency: req.cart.currency,
        now,
        sharedLimit: this.identity.sharedLimit,
        accountCreatedAt: admission.context.accountCreatedAt,
      });
      // A repeat returns the first answer even if the caller has been blocked since.
      if (existing) return replay(existing);
      if (normalized === null || !context) return { ok: false, reason: 'code_not_found' };
      see(seen, context);

      const decision = decide({ ...context, customer: req.customer, cart: req.cart, now });
      if (!decision.eligible) return { ok: false, reason: decision.reason };

      const redemptionId = newId('redemption', now.getTime());
      const risk = await this.decideRisk(req, admission, context, normalized, decision.discountMinor, now, {
        operation: 'redemption',
        channel: 'checkout',
        decisionId: `dec_${redemptionId.slice('red_'.length)}`,
      });
      if (risk.action === 'block' || risk.action === 'challenge') {
        // Stopped by the rules: nothing changes, the decision is kept for analysts and backtests.
        await insertStoppedDecision(this.ctx.db, {
          id: risk.id,
          now,
          campaignId: context.campaign.id,
          codeId: context.code.id,
          customerId: req.customer.id,
          action: risk.action,
          outcome: risk.action === 'block' ? 'blocked' : 'challenged',
          decision: decisionRecord(risk),
        });
        if (risk.action === 'block') return { ok: false, reason: 'blocked_by_rule', decision: risk };
        return {
          ok: false,
          reason: 'challenge_required',
          challenge: this.stepUps.issue(req.customer.id, normalized, risk.id),
          decision: risk,
        };
      }

      const outcome = await redeem(this.ctx.db, {
        id: redemptionId,
        eventId: newId('event', now.getTime()),
        idempotencyKey,
        fingerprint: print,
        codeId: context.code.id,
        campaignId: context.campaign.id,
        campaignVersion: context.campaign.version,
        customerId: req.customer.id,
        orderId: req.orderId ?? null,
        currency: req.cart.currency,
        subtotalMinor: req.cart.subtotalMinor,
        discountMinor: decision.discountMinor,
        now,
        perCustomerCap: context.campaign.perCustomerCap,
        perPersonCap: context.campaign.perPersonCap,
        throttlePerMinute: this.remediations
          ? await this.remediations.throttle(context.campaign.id, context.campaign.throttlePerMinute)
          : context.campaign.throttlePerMinute,
        partner: context.code.partner,
        personCandidate: newId('person', now.getTime()),
        // Always at least the customer: person usage is counted even before a per-person cap exists,
        // so a cap added mid-campaign counts the redemptions made before it.
        identityKeys: keys,
        context: Object.keys(admission.context.stored).length > 0 ? admission.context.stored : null,
        decision: decisionRecord(risk),
        review: risk.action === 'review',
        sharedLimit: this.identity.sharedLimit,
      });
      switch (outcome.outcome) {
        case 'redeemed':
          this.ctx.afterCommit();
          if (risk.holdWith.length > 0) await holdRelatedRedemptions(this.ctx, outcome.redemption, risk, now);
          return { ok: true, redemption: outcome.redemption, replayed: false, decision: risk };
        case 'replayed':
          return replay(outcome.redemption);
        case 'refused':
          if (outcome.reason === 'campaign_changed' && attempt < MAX_ATTEMPTS) continue;
          return { ok: false, reason: outcome.reason };
      }
    }
  }

  private replay(
    existing: Redemption,
    req: CheckoutRequest,
    normalized: string,
    context: ResolvedContext,
  ): RedeemResult {
    const stored = existing.requestFingerprint;
    const print = stored.startsWith(WHOLE_REQUEST)
      ? fingerprint(normalized, req, context.stored)
      : fieldsFingerprint(normalized, req);
    if (stored !== print) {
      throw new AppError(
        'idempotency_key_reused',
        'this Idempotency-Key was first used for a different redemption request',
      );
    }
    return { ok: true, redemption: existing, replayed: true, decision: null };
  }

  /** Undo a redemption; repeats (and concurrent calls) restore the counters exactly once. */
  async rollback(id: string, reason: string | null): Promise<Redemption> {
    const now = this.ctx.clock.now();
    const outcome = await rollback(this.ctx.db, { id, eventId: newId('event', now.getTime()), reason, now });
    if (outcome.outcome === 'not_found') throw new AppError('redemption_not_found');
    if (outcome.outcome === 'rolled_back') {
      this.ctx.afterCommit();
      const r = outcome.redemption;
      this.ctx.telemetry?.emit({
        kind: 'rollback',
        at: now,
        outcome: 'rolled_back',
        reason: null,
        campaignId: r.campaignId,
        codeId: r.codeId,
        batchId: null,
        partner: null,
        customerId: r.customerId,
        amountMinor: r.discountMinor,
        currency: r.currency,
        accountAgeHours: null,
        ipKey: null,
        deviceKey: null,
        paymentKey: null,
        decision: null,
        storefront: false,
        durationMs: 0,
      });
    }
    return outcome.redemption;
  }

  async get(id: string): Promise<Redemption> {
    const redemption = await findRedemption(this.ctx.db, id);
    if (!redemption) throw new AppError('redemption_not_found');
    return redemption;
  }

  list(filter: {
    campaignId?: string | undefined;
    customerId?: string | undefined;
    limit: number;
    before?: string | undefined;
  }) {
    return listRedemptions(this.ctx.db, filter);
  }
}
