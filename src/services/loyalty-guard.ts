/**
 * The risk path of loyalty operations (account takeover): conversions, wallet reads and redemptions of
 * coupons made from points carry the request context, read the customer's own history (devices,
 * networks, cards, hours) and go through the risk engine like a redemption: decisions recorded, shadow
 * rules recorded only, `challenge` answered with the step-up contract of security/step-up.ts.
 */

import type { Kysely } from 'kysely';
import { addressPrefix, type TakeoverFacts, takeoverFeatures } from '../domain/takeover.js';
import type { RiskDecision, RiskEngine, RiskSubject } from '../risk/engine.js';
import type { IdentifierHasher } from '../security/identifier-hasher.js';
import {
  type RequestContextInput,
  type ResolvedContext,
  resolveContext,
} from '../security/request-context.js';
import type { StepUpChallenges } from '../security/step-up.js';
import type { Database } from '../store/schema.js';
import { SightingsRecorder, TakeoverReader } from '../store/takeover.js';

/** A request's context with the keys the customer's history is kept by. */
export interface LoyaltyContext {
  resolved: ResolvedContext;
  device: string | null;
  /** The keyed hash of the client address's /24 (IPv4) or /48 (IPv6). */
  prefix: string | null;
  payment: string | null;
}

/** What a step-up token of a loyalty operation is bound to, besides the customer. */
export const conversionSubject = (idempotencyKey: string) => `conversion:${idempotencyKey}`;
export const WALLET_SUBJECT = 'wallet';

export class LoyaltyGuard {
  readonly history: TakeoverReader;
  readonly sightings: SightingsRecorder;

  constructor(
    db: Kysely<Database>,
    private readonly hasher: IdentifierHasher,
    readonly risk: RiskEngine,
    private readonly stepUps: StepUpChallenges,
    onError: (err: unknown, what: string) => void,
  ) {
    this.history = new TakeoverReader(db);
    this.sightings = new SightingsRecorder(db, (err) =>
      onError(err, 'customer history could not be recorded'),
    );
  }

  /** Resolve (and validate: a malformed identifier is a 400) the request context. */
  context(input: RequestContextInput | undefined): LoyaltyContext {
    const resolved = resolveContext(this.hasher, input);
    return LoyaltyGuard.keysOf(this.hasher, resolved);
  }

  static keysOf(hasher: IdentifierHasher, resolved: ResolvedContext): LoyaltyContext {
    return {
      resolved,
      device: resolved.deviceKey,
      prefix: resolved.ipAddress ? hasher.hash('ip', addressPrefix(resolved.ipAddress)) : null,
      payment: resolved.all.find((i) => i.type === 'payment')?.hash ?? null,
    };
  }

  /** The keys of a context another service already resolved. */
  keys(resolved: ResolvedContext): LoyaltyContext {
    return LoyaltyGuard.keysOf(this.hasher, resolved);
  }

  facts(customerId: string, c: LoyaltyContext, utcDay: string, now: Date): Promise<TakeoverFacts> {
    return this.history.read({
      customerId,
      device: c.device,
      prefix: c.prefix,
      payment: c.payment,
      utcDay,
      now,
    });
  }

  features = takeoverFeatures;

  decide(subject: RiskSubject): Promise<RiskDecision> {
    return this.risk.decide(subject);
  }

  /** The step-up method when the proof is a valid token for this customer and subject. */
  stepUp(proof: { challenge: string; method: string } | undefined, customerId: string, subject: string) {
    if (!proof) return null;
    return this.stepUps.satisfies(proof.challenge, customerId, subject) ? proof.method : null;
  }

  challenge(customerId: string, subject: string, decisionId: string) {
    return this.stepUps.issue(customerId, subject, decisionId);
  }

  /** An action that went through teaches the customer's history (after the answer; never awaited). */
  sight(customerId: string, c: LoyaltyContext, verified: boolean, at: Date): void {
    this.sightings.record({
      customerId,
      device: c.device,
      prefix: c.prefix,
      payment: c.payment,
      verified,
      at,
    });
  }

  async settled(): Promise<void> {
    await this.sightings.settled();
  }
}
