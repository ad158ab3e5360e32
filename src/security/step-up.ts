/**
 * The step-up contract of a `challenge` decision. The redemption is refused with HTTP 428
 * `challenge_required` and a challenge token bound to the customer and the code (valid 10 minutes).
 * The merchant verifies the shopper its own way — a one-time code by SMS or email, 3-D Secure, a
 * password re-entry — and retries the same request (same Idempotency-Key) with
 * `step_up: { challenge: <token>, method: "otp" }`. A valid token for this customer and code satisfies
 * every `challenge` rule of that retry; it never lifts a `block`. The checkout backend is trusted to
 * send it only after the verification succeeded (the method is recorded with the decision).
 */
import type { Clock } from '../lib/clock.js';
import { SignedTokens } from './signed-tokens.js';

const CHALLENGE_TTL_SECONDS = 600;

export class StepUpChallenges {
  private readonly tokens: SignedTokens;

  constructor(secret: Buffer, clock: Clock) {
    this.tokens = new SignedTokens(secret, 'step-up-challenge', 'pgx_', clock);
  }

  issue(customerId: string, normalizedCode: string, decisionId: string): { token: string; expiresAt: Date } {
    return this.tokens.issue({ c: customerId, k: normalizedCode, d: decisionId }, CHALLENGE_TTL_SECONDS);
  }

  /** Does this token prove a step-up for this customer and code? Anything else (forged, expired, another customer's) is false. */
  satisfies(token: string, customerId: string, normalizedCode: string): boolean {
    const claims = this.tokens.verify(token);
    return claims !== null && claims.c === customerId && claims.k === normalizedCode;
  }
}
