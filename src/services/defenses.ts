/**
 * The defenses every validation and redemption passes before the code is looked at: the request
 * context is reduced to hashes, the block and allow lists are consulted, and the attempt is counted
 * per client address (IPv4, or IPv6 /64), per customer and per device — at most N a minute, and a key
 * that fails M times in a row is locked for a growing period. An allow-listed identifier skips the
 * counting (never a cap: caps are enforced by the redemption statement itself).
 */
import type { RefusalReason } from '../domain/campaign.js';
import { AppError } from '../errors.js';
import { type AttemptGuard, type GuardKey, type GuardKind, strictest } from '../limits/attempt-guard.js';
import type { IdentifierHasher } from '../security/identifier-hasher.js';
import {
  type RequestContextInput,
  type ResolvedContext,
  resolveContext,
} from '../security/request-context.js';
import type { ListService } from './lists.js';

export type GuardEvent =
  | { kind: 'refused'; keyKind: GuardKind; reason: 'rate_limited' | 'locked' }
  | { kind: 'locked'; keyKind: GuardKind };

export interface Admission {
  context: ResolvedContext;
  guardKeys: GuardKey[];
  /** Refused by a block list before anything else. */
  blocked: boolean;
  /** Allow-listed: not counted by the guard. */
  allowed: boolean;
}

/** Refusals that look like guessing: they count toward the lockout of the caller's keys. */
const GUESSING: ReadonlySet<RefusalReason> = new Set([
  'code_not_found',
  'code_revoked',
  'code_expired',
  'code_used_up',
  'code_bound_to_other_customer',
]);

/** A failed attempt in the sense of the lockout and of `ip_failed_attempts_1h`: guessing, or blocked. */
export function isFailedAttempt(reason: RefusalReason): boolean {
  return GUESSING.has(reason) || reason === 'blocked' || reason === 'blocked_by_rule';
}

export class Defenses {
  constructor(
    private readonly hasher: IdentifierHasher,
    private readonly lists: ListService,
    private readonly guard: AttemptGuard,
    /** Client addresses: a looser limit and lockout, since one address is often many shoppers. */
    private readonly addressGuard: AttemptGuard = guard,
    /** Told of each refusal and each new lock, by the kind of key (for the metrics). */
    private readonly onGuard: (event: GuardEvent) => void = () => {},
  ) {}

  /** Each key to the guard that limits its kind. */
  private split(keys: GuardKey[]): [AttemptGuard, GuardKey[]][] {
    return [
      [this.guard, keys.filter((k) => k.kind !== 'ip')],
      [this.addressGuard, keys.filter((k) => k.kind === 'ip')],
    ];
  }

  /** The request's context as it is hashed and stored, without judging it. */
  resolve(input: RequestContextInput | undefined): ResolvedContext {
    return resolveContext(this.hasher, input);
  }

  /** The keyed hash a normalized code is counted under (risk features). */
  codeKey(normalizedCode: string): string {
    return this.hasher.codeKey(normalizedCode);
  }

  /** Throws `too_many_requests` (with the seconds to wait) when the caller is limited or locked. */
  async admit(customerId: string, input: RequestContextInput | undefined): Promise<Admission> {
    const context = resolveContext(this.hasher, input);
    const verdict = await this.lists.judge(customerId, context.all, context.ipAddress);
    const guardKeys: GuardKey[] = [{ kind: 'customer', value: customerId }];
    if (context.ipKey) guardKeys.push({ kind: 'ip', value: context.ipKey });
    if (context.deviceKey) guardKeys.push({ kind: 'device', value: context.deviceKey });
    const admission = { context, guardKeys, blocked: verdict.blocked !== null, allowed: verdict.allowed };
    if (admission.allowed && !admission.blocked) return admission;
    // The longest wait wins when several keys are limited (a guard given no keys allows).
    const check = strictest(
      await Promise.all(this.split(guardKeys).map(([guard, keys]) => guard.check(keys))),
    );
    if (!check.allowed) {
      this.onGuard({ kind: 'refused', keyKind: check.key.kind, reason: check.reason });
      throw new AppError('too_many_requests', 'too many attempts; retry later', {
        retry_after_seconds: check.retryAfterSeconds,
        // `locked` (consecutive failures) or `rate_limited` (too many attempts this minute).
        reason: check.reason,
      });
    }
    return admission;
  }

  /**
   * Record how the attempt ended: failures move toward a lock, a success resets it. Only a redemption
   * resets a lockout (`resets`): were a validation enough, one known public code between guesses would
   * keep a guesser from ever being locked.
   */
  async settle(
    admission: Admission,
    outcome: { ok: true } | { ok: false; reason: RefusalReason },
    resets: boolean,
  ): Promise<void> {
    if (admission.allowed && !admission.blocked) return;
    const parts = this.split(admission.guardKeys);
    if (outcome.ok) {
      if (resets) await Promise.all(parts.map(([guard, keys]) => guard.recordSuccess(keys)));
    } else if (isFailedAttempt(outcome.reason)) {
      const verdicts = await Promise.all(parts.map(([guard, keys]) => guard.recordFailure(keys)));
      for (const v of verdicts) if (!v.allowed) this.onGuard({ kind: 'locked', keyKind: v.key.kind });
    }
  }
}
