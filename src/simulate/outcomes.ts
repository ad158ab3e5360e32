/**
 * How the simulator reads the server's answer to one attempt, and what each kind of answer counts as in
 * the scorecard. Everything here is pure, so the scorecard's meaning is one table a reader can check.
 */

/** What happened to an attempt, from the HTTP answer alone. */
export const OUTCOMES = [
  /** 201 (or a valid validation): the discount, conversion or credit was granted. */
  'allowed',
  /** 201 with `review_status: "pending"`: granted, but flagged and held for a person to review. */
  'held',
  /** 428 `challenge_required` that the actor did not pass (the last answer it got). */
  'challenged',
  /** 422 with reason `blocked_by_rule` (or a validation's `valid: false, reason: blocked_by_rule`). */
  'blocked_by_rule',
  /** Refused by a defense: a block list, a per-person/customer/partner cap, a single-use code already used… */
  'refused_by_defense',
  /** 429 `too_many_requests` (rate limited or locked after consecutive failures). */
  'rate_limited',
  /** Refused for an ordinary business reason: unknown code (a typo, a wrong guess), not started, expired… */
  'refused_business',
  /** 201 with `Idempotent-Replayed: true`: a repeat returned the first result and changed nothing. */
  'replayed',
  /** A network error, a 5xx, or an answer the simulator did not expect (a 400 is a simulator bug). */
  'error',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * What an outcome means for each label. For an abusive attempt, `stopped` = the attacker did not get the
 * money unflagged (a business refusal counts: a guess that finds nothing, a code used outside its window).
 * For an honest attempt, `hurt` = friction or harm the server caused a legitimate customer (a typo's
 * `code_not_found` is not harm; being limited, challenged, held or refused by a defense is).
 * A challenge the actor passed is not an outcome of its own: the attempt ends with the retry's outcome and
 * carries `challenged: true`, which also counts as hurt for an honest actor (friction) but not as blocked.
 */
export const OUTCOME_MEANING: Record<Outcome, { abuseStopped: boolean; honestHurt: boolean }> = {
  allowed: { abuseStopped: false, honestHurt: false },
  held: { abuseStopped: true, honestHurt: true },
  challenged: { abuseStopped: true, honestHurt: true },
  blocked_by_rule: { abuseStopped: true, honestHurt: true },
  refused_by_defense: { abuseStopped: true, honestHurt: true },
  rate_limited: { abuseStopped: true, honestHurt: true },
  refused_business: { abuseStopped: true, honestHurt: false },
  replayed: { abuseStopped: true, honestHurt: false },
  error: { abuseStopped: false, honestHurt: false },
};

/**
 * Refusal reasons (redemption `reason`s and points error codes) that are a defense acting, as opposed to a
 * business rule. Anything not listed here (and not `blocked_by_rule`) is `refused_business`.
 */
export const DEFENSE_REASONS: ReadonlySet<string> = new Set([
  'blocked',
  'person_cap_reached',
  'customer_cap_reached',
  'partner_cap_reached',
  'campaign_throttled',
  // The atomic use count of a single-use code: what stops a race from using it twice.
  'code_used_up',
  // A revoked code (a leaked partner batch) and a code bound to someone else (a stolen loyalty coupon).
  'code_revoked',
  'code_bound_to_other_customer',
  // Points: the balance and the daily limit are the caps of a conversion.
  'insufficient_points',
  'daily_conversion_limit_exceeded',
]);

export function outcomeOfReason(reason: string): Outcome {
  if (reason === 'blocked_by_rule') return 'blocked_by_rule';
  return DEFENSE_REASONS.has(reason) ? 'refused_by_defense' : 'refused_business';
}

export type AttemptKind = 'validate' | 'redeem' | 'convert' | 'credit';

export interface HttpAnswer {
  /** 0 when the request never got an answer (network error, timeout). */
  status: number;
  body: unknown;
  headers: Record<string, string>;
  latencyMs: number;
}

export interface Classified {
  outcome: Outcome;
  /** The refusal reason, problem code or error text, when there is one. */
  reason: string | null;
  /** Minor units granted by this answer (discount, coupon amount, or points credited). */
  grantedMinor: number;
  /** The risk decision the server attached, if any. */
  decision: { id: string | null; action: string; rules: string[] } | null;
  /** For 429: seconds to wait (Retry-After), for 428: the challenge token. */
  retryAfterSeconds: number | null;
  challengeToken: string | null;
}

export const asRecord = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};

function decisionOf(body: Record<string, unknown>): Classified['decision'] {
  const d = body['decision'];
  if (d === null || typeof d !== 'object') return null;
  const rec = d as Record<string, unknown>;
  const rules = Array.isArray(rec['rules'])
    ? (rec['rules'] as unknown[]).map((r) => {
        const rule = asRecord(r);
        return `${String(rule['id'] ?? rule['name'] ?? '?')}:${String(rule['action'] ?? '?')}${rule['mode'] === 'shadow' ? '(shadow)' : ''}`;
      })
    : [];
  const id = typeof rec['id'] === 'string' ? rec['id'] : null;
  return { id, action: String(rec['action'] ?? 'unknown'), rules };
}

/** The amount an accepted answer granted, by kind. */
function grantedOf(kind: AttemptKind, body: Record<string, unknown>): number {
  switch (kind) {
    case 'validate':
      return 0;
    case 'redeem':
      return Number(body['discount_minor'] ?? 0);
    case 'convert':
      return Number(body['amount_minor'] ?? 0);
    case 'credit':
      return Number(asRecord(body['movement'])['points'] ?? 0);
  }
}

/** Classify one HTTP answer to an attempt of this kind. Pure. */
export function classify(kind: AttemptKind, answer: HttpAnswer): Classified {
  const body = asRecord(answer.body);
  const base: Classified = {
    outcome: 'error',
    reason: null,
    grantedMinor: 0,
    decision: decisionOf(body),
    retryAfterSeconds: null,
    challengeToken: null,
  };
  const code = typeof body['code'] === 'string' ? (body['code'] as string) : null;
  if (answer.status === 0) return { ...base, reason: String(body['error'] ?? 'network error') };
  if (answer.status === 429) {
    const header = Number(answer.headers['retry-after']);
    const ext = Number(body['retry_after_seconds']);
    const wait = Number.isFinite(header) && header > 0 ? header : Number.isFinite(ext) ? ext : 1;
    return {
      ...base,
      outcome: 'rate_limited',
      reason: typeof body['reason'] === 'string' ? (body['reason'] as string) : 'too_many_requests',
      retryAfterSeconds: wait,
    };
  }
  if (answer.status === 428) {
    const challenge = asRecord(body['challenge']);
    return {
      ...base,
      outcome: 'challenged',
      reason: code ?? 'challenge_required',
      challengeToken: typeof challenge['token'] === 'string' ? (challenge['token'] as string) : null,
    };
  }
  if (kind === 'validate' && answer.status === 200) {
    if (body['valid'] === true) return { ...base, outcome: 'allowed' };
    const reason = typeof body['reason'] === 'string' ? (body['reason'] as string) : 'invalid';
    return { ...base, outcome: outcomeOfReason(reason), reason };
  }
  if (kind !== 'validate' && answer.status === 201) {
    const granted = grantedOf(kind, body);
    if (answer.headers['idempotent-replayed'] === 'true') {
      return { ...base, outcome: 'replayed', reason: 'idempotent_replay', grantedMinor: 0 };
    }
    if (body['review_status'] === 'pending') return { ...base, outcome: 'held', grantedMinor: granted };
    return { ...base, outcome: 'allowed', grantedMinor: granted };
  }
  if (answer.status === 422 && code !== null) {
    const reason =
      code === 'redemption_refused' && typeof body['reason'] === 'string' ? (body['reason'] as string) : code;
    if (code === 'redemption_refused' || kind === 'convert' || kind === 'credit') {
      return { ...base, outcome: outcomeOfReason(reason), reason };
    }
  }
  return { ...base, reason: code ?? `http_${answer.status}` };
}
