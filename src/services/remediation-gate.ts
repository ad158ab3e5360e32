/**
 * The remediations in force as the request path sees them: a copy in memory, re-read when the
 * `remediations` stamp moves (at once on the node that changed it, within a poll on the others), so a
 * request pays a map lookup, not a query. Throttles go into the redeem statement's own throttle (the
 * lower of the campaign's and the remediation's), step-ups and review holds join the risk decision as
 * enforced rules, and a tighter guessing limit refuses a caller that failed too often on the batch.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type CodePattern, hasPatternShape } from '../domain/codes.js';
import { type CallerClass, parseParams, reachesCaller } from '../domain/remediation.js';
import type { RiskAction } from '../domain/risk.js';
import { AppError } from '../errors.js';
import type { WindowCounters } from '../limits/window-counters.js';
import type { ResolvedContext } from '../security/request-context.js';
import { batchShapes, listEnforced } from '../store/remediations.js';
import type { Database } from '../store/schema.js';
import { StampedCache } from '../store/stamped-cache.js';

interface Check {
  remediationId: string;
  policyId: string;
  action: Extract<RiskAction, 'challenge' | 'review'>;
  codeId: string | null;
  appliesTo: CallerClass[];
  newAccountHours: number;
}

interface Guessing {
  remediationId: string;
  shapes: CodePattern[];
  failuresPerCaller: number;
  windowMs: number;
}

interface InForce {
  throttles: Map<string, number>;
  checks: Map<string, Check[]>;
  guessing: Guessing[];
}

/** A remediation as the risk engine takes it: an enforced rule that fired. */
export interface RemediationRule {
  id: string;
  name: string;
  action: RiskAction;
  mode: 'enforce';
  reason: string;
}

const EMPTY: InForce = { throttles: new Map(), checks: new Map(), guessing: [] };

async function load(db: Kysely<Database>): Promise<InForce> {
  const rows = await listEnforced(db);
  if (rows.length === 0) return EMPTY;
  const inForce: InForce = { throttles: new Map(), checks: new Map(), guessing: [] };
  for (const r of rows) {
    const parsed = parseParams(r.action, r.params);
    if (!parsed.ok) continue;
    const p = parsed.value;
    const campaignId = r.target.campaignId;
    if (!campaignId) continue;
    if (p.action === 'throttle') {
      const current = inForce.throttles.get(campaignId);
      inForce.throttles.set(campaignId, current === undefined ? p.perMinute : Math.min(current, p.perMinute));
    } else if (p.action === 'require_step_up' || p.action === 'hold_for_review') {
      const list = inForce.checks.get(campaignId) ?? [];
      list.push({
        remediationId: r.id,
        policyId: r.policyId,
        action: p.action === 'require_step_up' ? 'challenge' : 'review',
        codeId: r.target.codeId,
        appliesTo: p.appliesTo,
        newAccountHours: p.newAccountHours,
      });
      inForce.checks.set(campaignId, list);
    } else if (p.action === 'tighten_guessing') {
      inForce.guessing.push({
        remediationId: r.id,
        shapes: await batchShapes(db, r.target),
        failuresPerCaller: p.failuresPerCaller,
        windowMs: p.windowSeconds * 1000,
      });
    }
  }
  return inForce;
}

/** The caller's keys a tighter guessing limit counts: customer, device, and the address's /24 or /48. */
function callerKeys(customerId: string, context: ResolvedContext): string[] {
  const keys = [`c:${customerId}`];
  if (context.deviceKey) keys.push(`d:${context.deviceKey}`);
  const ip = context.ipAddress;
  if (ip) {
    // A guesser rotating through a /64 or a whole /48 (or an IPv4 /24) is still one caller here.
    const block = ip.version === 4 ? `4:${ip.value >> 8n}` : `6:${ip.value >> 80n}`;
    keys.push(`b:${createHash('sha256').update(block).digest('base64url').slice(0, 16)}`);
  }
  return keys;
}

export class RemediationGate {
  private readonly cache: StampedCache<InForce>;

  constructor(
    db: Kysely<Database>,
    private readonly counters: WindowCounters,
    checkMs: number,
    onError: (err: unknown) => void,
  ) {
    this.cache = new StampedCache(db, 'remediations', () => load(db), checkMs, onError);
  }

  invalidate(): void {
    this.cache.invalidate();
  }

  private async inForce(): Promise<InForce> {
    return this.cache.get();
  }

  /** The throttle the redeem statement enforces: the lower of the campaign's and any remediation's. */
  async throttle(campaignId: string, campaignThrottle: number | null): Promise<number | null> {
    const t = (await this.inForce()).throttles.get(campaignId);
    if (t === undefined) return campaignThrottle;
    return campaignThrottle === null ? t : Math.min(t, campaignThrottle);
  }

  /** The step-up and review remediations that reach this caller on this code. */
  async rules(
    campaignId: string,
    codeId: string,
    accountCreatedAt: Date | null,
    now: Date,
  ): Promise<RemediationRule[]> {
    const checks = (await this.inForce()).checks.get(campaignId);
    if (!checks) return [];
    return checks
      .filter((c) => c.codeId === null || c.codeId === codeId)
      .filter((c) => reachesCaller(c.appliesTo, c.newAccountHours, accountCreatedAt, now))
      .map((c) => ({
        id: c.remediationId,
        name: `remediation by policy ${c.policyId}`,
        action: c.action,
        mode: 'enforce' as const,
        reason: `remediation ${c.remediationId} in force`,
      }));
  }

  private async guessingFor(normalized: string): Promise<Guessing[]> {
    const { guessing } = await this.inForce();
    if (guessing.length === 0) return [];
    return guessing.filter((g) => g.shapes.some((s) => hasPatternShape(normalized, s)));
  }

  /**
   * Refuse (429, `guessing_limit`) a caller that already failed the tightened number of times on a
   * batch under a guessing remediation. Fails open when the counters cannot answer: a rate limit.
   */
  async admitGuess(
    normalized: string | null,
    customerId: string,
    context: ResolvedContext,
    now: Date,
  ): Promise<void> {
    if (normalized === null) return;
    const limits = await this.guessingFor(normalized);
    if (limits.length === 0) return;
    const keys = callerKeys(customerId, context);
    for (const g of limits) {
      let counts: number[];
      try {
        counts = await this.counters.count(
          keys.map((k) => ({ key: `rg:${g.remediationId}:${k}`, windowMs: g.windowMs })),
          now.getTime(),
        );
      } catch {
        return;
      }
      if (counts.some((n) => n >= g.failuresPerCaller)) {
        throw new AppError('too_many_requests', 'too many attempts; retry later', {
          retry_after_seconds: Math.ceil(g.windowMs / 1000),
          reason: 'guessing_limit',
        });
      }
    }
  }

  /** Count a failed attempt on a batch under a guessing remediation against the caller's keys. */
  async recordGuess(
    normalized: string | null,
    customerId: string,
    context: ResolvedContext,
    now: Date,
  ): Promise<void> {
    if (normalized === null) return;
    const limits = await this.guessingFor(normalized);
    if (limits.length === 0) return;
    const keys = callerKeys(customerId, context);
    const member = `${now.getTime()}:${Math.random().toString(36).slice(2)}`;
    await this.counters
      .add(
        limits.flatMap((g) =>
          keys.map((k) => ({ key: `rg:${g.remediationId}:${k}`, member, windowMs: g.windowMs })),
        ),
        now.getTime(),
      )
      .catch(() => {});
  }
}
