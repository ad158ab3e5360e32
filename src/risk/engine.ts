/**
 * The risk engine: on every validation and redemption that passed eligibility it computes the declared
 * features, evaluates the analysts' rules (CEL) over them and the request, and resolves one action
 * (domain/risk.ts). After the attempt it records what the features count — the attempt being decided
 * never counts in its own features.
 *
 * Failure policy: the counters may be unreachable (Redis down). Caps never depend on them (they are
 * enforced by the database and still fail closed); a rule that reads a feature that could not be
 * computed fails open to `review`. Both are counted in `stats`.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Cart, type CustomerFacts, plannedPerHour } from '../domain/campaign.js';
import {
  accountAgeHours,
  amountRatio,
  FEATURES,
  type FeatureValues,
  featureOperations,
  type HoldWith,
  type Resolution,
  type RiskAction,
  type RiskOperation,
  type RuleOutcome,
  resolveDecision,
} from '../domain/risk.js';
import { parseScoreModel, type ScoreModel, ScoreModelFormatError, score } from '../domain/score-model.js';
import { newId } from '../lib/ids.js';
import type { WindowCounters, WindowEvent, WindowQuery } from '../limits/window-counters.js';
import type { ResolvedContext } from '../security/request-context.js';
import type { RiskFacts } from '../store/redemption-context.js';
import { listRules, type RiskRule } from '../store/risk.js';
import type { CampaignRecord, CodeRecord } from '../store/rows.js';
import type { Database } from '../store/schema.js';
import { activeScoreModels } from '../store/score-models.js';
import { StampedCache } from '../store/stamped-cache.js';
import {
  type CompiledRule,
  compileRule,
  type DecisionInputs,
  toActivation,
  USER_AGENT_LIMIT,
} from './rule-language.js';

const FEATURE_WINDOW = Object.fromEntries(FEATURES.map((f) => [f.name, f.windowMs ?? 0]));
const COUNTER_FEATURES = FEATURES.filter((f) => f.source === 'counter').map((f) => f.name);
/** Per operation, the features it does not compute: rules reading one do not apply to it. */
const NOT_COMPUTED = new Map<RiskOperation, Set<string>>(
  (['validation', 'redemption', 'conversion', 'wallet_read'] as const).map((op) => [
    op,
    new Set(FEATURES.filter((f) => !featureOperations(f).includes(op)).map((f) => f.name)),
  ]),
);
/** How long a feature read may take before its features count as unavailable. */
const COUNTER_TIMEOUT_MS = 100;
/** Rules saved on another node take effect here within this long. */
const RULES_REFRESH_MS = 2_000;

/** What a conversion converts (the rules' `loyalty` variable). */
export interface LoyaltySubject {
  programId: string;
  points: number;
  amountMinor: number;
  currency: string;
  balance: number;
}

/**
 * What is decided on. A validation or redemption has its cart, campaign, code and facts; a conversion
 * has `loyalty` and no order or code; a wallet read has neither. A rule reading a variable the subject
 * lacks does not apply to it.
 */
export interface RiskSubject {
  operation: RiskOperation;
  channel: 'checkout' | 'storefront';
  customer: CustomerFacts;
  cart?: Cart | undefined;
  context: ResolvedContext;
  campaign?: CampaignRecord | undefined;
  code?: CodeRecord | undefined;
  /** The keyed hash of the normalized code asked for (Defenses.codeKey), for per-code-text counts. */
  codeKey?: string | undefined;
  discountMinor?: number | undefined;
  facts?: RiskFacts | undefined;
  loyalty?: LoyaltySubject | undefined;
  /** Features the caller computed (the account-takeover features of domain/takeover.ts). */
  extraFeatures?: FeatureValues | undefined;
  allowListed: boolean;
  /** A valid step-up proof came with the request (its method), or null. */
  stepUp: string | null;
  now: Date;
  /** The decision's id (a redemption's decision shares its ULID); generated when absent. */
  decisionId?: string | undefined;
  /** Remediations in force that reach this attempt: they act as enforced rules that fired. */
  remediations?: readonly { id: string; name: string; action: RiskAction; mode: 'enforce'; reason: string }[];
}

export interface DecisionRule {
  id: string;
  name: string;
  action: RiskAction;
  mode: 'enforce' | 'shadow';
  reason: string;
  result: 'fired' | 'unavailable' | 'error';
  detail?: string | undefined;
  /** The values of the features this rule reads, as it saw them. */
  features: FeatureValues;
}

export interface RiskDecision {
  id: string;
  action: RiskAction;
  /** The enforced rules that set the action. */
  because: string[];
  /** A hold's reach beyond this redemption, from the enforced review rules that set it (HOLD_WITH). */
  holdWith: HoldWith[];
  /** Every rule that fired (enforced or shadow), could not be evaluated, or failed. */
  rules: DecisionRule[];
  features: FeatureValues;
  unavailableFeatures: string[];
  allowListed: boolean;
  challengeSatisfied: boolean;
  stepUp: string | null;
  inputs: DecisionInputs;
  /** The learned models' scores: the enforcing one's is also `features.model_score`. */
  model: DecisionModelScores;
}

export interface DecisionModelScores {
  enforcing?: { version: number; score: number };
  shadow?: { version: number; score: number };
}

/** A learned model loaded for scoring. */
export interface LoadedScoreModel {
  version: number;
  status: 'enforcing' | 'shadow';
  model: ScoreModel;
}

/**
 * The stored (and event) form of a decision. The inputs' `features` are the decision's own `features`
 * (one object), so they are stored once; storedInputs() puts them back.
 */
export function decisionRecord(d: RiskDecision): Record<string, unknown> {
  const { features: _same, ...inputs } = d.inputs;
  return {
    id: d.id,
    action: d.action,
    because: d.because,
    rules: d.rules,
    features: d.features,
    unavailable_features: d.unavailableFeatures,
    allow_listed: d.allowListed,
    challenge_satisfied: d.challengeSatisfied,
    step_up: d.stepUp,
    inputs,
    ...(d.model.enforcing || d.model.shadow ? { model: d.model } : {}),
  };
}

/** What the rules saw, from a stored decision (of either form: with or without the inputs' features). */
export function storedInputs(decision: Record<string, unknown>): DecisionInputs {
  const inputs = (decision.inputs ?? {}) as DecisionInputs;
  if (inputs.features !== undefined) return inputs;
  return { ...inputs, features: (decision.features ?? {}) as Record<string, unknown> };
}

interface LoadedRule {
  rule: RiskRule;
  compiled: CompiledRule | null;
  compileError: string | null;
}

export interface RiskStats {
  decisions: Record<RiskAction, number>;
  /** Feature reads that failed or timed out (their features were unavailable). */
  featureErrors: number;
  /** Decisions sent to review because an enforced rule read an unavailable feature. */
  failOpenReviews: number;
  /** Rule evaluations that failed at run time (the rule did not fire). */
  ruleErrors: number;
  /** Attempts whose counters could not be recorded. */
  recordErrors: number;
}

export interface AttemptRecord {
  customerId: string;
  context: ResolvedContext;
  campaignId: string | null;
  codeId: string | null;
  /** The redemption made, if any. */
  redemptionId: string | null;
  /** The partner of the code redeemed, if any. */
  partner?: string | null | undefined;
  /** A failed attempt in the sense of isFailedAttempt (guessing; a blocked identifier; blocked_by_rule). */
  failed: boolean;
  now: Date;
}

function eventId(): string {
  return randomBytes(9).toString('base64url');
}

export class RiskEngine {
  private readonly rules: StampedCache<LoadedRule[]>;
  private readonly models: StampedCache<LoadedScoreModel[]>;
  private readonly recording = new Set<Promise<void>>();
  readonly stats: RiskStats = {
    decisions: { allow: 0, review: 0, challenge: 0, block: 0 },
    featureErrors: 0,
    failOpenReviews: 0,
    ruleErrors: 0,
    recordErrors: 0,
  };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly counters: WindowCounters,
    private readonly onError: (err: unknown, what: string) => void,
  ) {
    this.rules = new StampedCache(
      db,
      'rules',
      () => this.loadRules(),
      RULES_REFRESH_MS,
      (err) => onError(err, 'risk rules refresh failed'),
    );
    this.models = new StampedCache(
      db,
      'models',
      () => this.loadModels(),
      RULES_REFRESH_MS,
      (err) => onError(err, 'score models refresh failed'),
    );
  }

  /** Forget the cached models: the next decision re-reads them (after training or promotion here). */
  invalidateModels(): void {
    this.models.invalidate();
  }

  /**
   * The enforcing and shadow models. One of a format this version cannot read is left out (and
   * reported): decisions go on without it rather than fail.
   */
  private async loadModels(): Promise<LoadedScoreModel[]> {
    const loaded: LoadedScoreModel[] = [];
    for (const stored of await activeScoreModels(this.db)) {
      try {
        loaded.push({
          version: stored.version,
          status: stored.status as LoadedScoreModel['status'],
          model: parseScoreModel(stored.model),
        });
      } catch (err) {
        if (!(err instanceof ScoreModelFormatError)) throw err;
        this.onError(err, `score model ${stored.version} cannot be read; decisions go on without it`);
      }
    }
    return loaded;
  }

  /** Forget the cached rules: the next decision re-reads them (after a change on this node). */
  invalidateRules(): void {
    this.rules.invalidate();
  }

  private async loadRules(): Promise<LoadedRule[]> {
    const rules = await listRules(this.db);
    return rules.map((rule) => {
      const compiled = compileRule(rule.expression);
      return compiled.ok
        ? { rule, compiled: compiled.rule, compileError: null }
        : { rule, compiled: null, compileError: compiled.message };
    });
  }

  private counterQueries(s: RiskSubject): { name: string; query: WindowQuery }[] {
    const q: { name: string; query: WindowQuery }[] = [];
    const add = (name: string, key: string) =>
      q.push({ name, query: { key, windowMs: FEATURE_WINDOW[name] as number } });
    const device = s.context.deviceKey;
    const payment = s.context.all.find((i) => i.type === 'payment');
    if (device) {
      if (s.campaign) add('device_campaign_redemptions_24h', `dc:${device}:${s.campaign.id}`);
      add('device_customers_24h', `dv:${device}`);
    }
    if (payment && s.code) add('code_payment_instruments_30d', `cp:${s.code.id}`);
    if (s.code) add('code_new_accounts_24h', `cna:${s.code.id}`);
    if (s.codeKey) add('code_locked_tries_1h', `cl:${s.codeKey}`);
    add('customer_failed_attempts_1h', `cf:${s.customer.id}`);
    if (s.campaign) add('campaign_new_accounts_1h', `cn:${s.campaign.id}`);
    if (s.campaign && s.code?.partner) add('partner_redemptions_1h', `pr:${s.campaign.id}:${s.code.partner}`);
    if (s.context.ipKey) {
      add('ip_failed_attempts_1h', `if:${s.context.ipKey}`);
      add('ip_customers_1h', `ic:${s.context.ipKey}`);
    }
    return q;
  }

  /** Counter features; on a store failure or timeout they are all unavailable. */
  private async counterFeatures(s: RiskSubject): Promise<{ values: FeatureValues; unavailable: string[] }> {
    const values: FeatureValues = {};
    // Without the entity (no device, no payment instrument, no address) nothing was counted: 0.
    for (const name of COUNTER_FEATURES) values[name] = 0;
    const wanted = this.counterQueries(s);
    if (wanted.length === 0) return { values, unavailable: [] };
    let timer: NodeJS.Timeout | undefined;
    try {
      const counting = this.counters.count(
        wanted.map((w) => w.query),
        s.now.getTime(),
      );
      // Counts kept in this process cannot hang: no timer (one less per decision).
      const counts = this.counters.inProcess
        ? await counting
        : await Promise.race([
            counting,
            new Promise<never>((_, reject) => {
              // A busy event loop runs this timer late, possibly after the answer arrived but before it was
              // read: let pending I/O be read once (setImmediate runs after the poll phase) before giving up.
              timer = setTimeout(
                () => setImmediate(() => reject(new Error('feature counters timed out'))),
                COUNTER_TIMEOUT_MS,
              );
            }),
          ]);
      wanted.forEach((w, i) => {
        values[w.name] = counts[i] ?? 0;
      });
      return { values, unavailable: [] };
    } catch (err) {
      this.stats.featureErrors++;
      this.onError(err, 'risk feature counters unavailable; rules reading them fail open to review');
      for (const name of COUNTER_FEATURES) delete values[name];
      return { values, unavailable: COUNTER_FEATURES };
    } finally {
      clearTimeout(timer);
    }
  }

  private inputs(s: RiskSubject, features: FeatureValues): DecisionInputs {
    const stored = s.context.stored;
    const userAgent =
      typeof stored.user_agent === 'string' ? stored.user_agent.slice(0, USER_AGENT_LIMIT) : undefined;
    const has = (type: string) => s.context.all.some((i) => i.type === type);
    const inputs: DecisionInputs = {
      features,
      request: {
        operation: s.operation,
        channel: s.channel,
        user_agent: userAgent,
        has_device: has('device'),
        has_payment: has('payment'),
        has_email: has('email'),
        has_phone: has('phone'),
        has_shipping_address: has('address'),
        has_ip: s.context.ipKey !== null,
      },
      customer: {
        id: s.customer.id,
        segment: s.customer.segment,
        region: s.customer.region,
        first_order: s.customer.firstOrder,
      },
    };
    if (s.cart) {
      inputs.order = {
        currency: s.cart.currency,
        subtotal_minor: s.cart.subtotalMinor,
        shipping_minor: s.cart.shippingMinor,
        discount_minor: s.discountMinor,
      };
    }
    if (s.campaign) {
      inputs.campaign = {
        id: s.campaign.id,
        name: s.campaign.name,
        discount_type: s.campaign.discount.type,
        metadata: s.campaign.metadata,
      };
    }
    if (s.code) {
      inputs.code = {
        kind: s.code.kind,
        bound: s.code.customerId !== null,
        partner: s.code.partner ?? undefined,
        max_uses: s.code.maxUses ?? undefined,
      };
    }
    if (s.loyalty) {
      inputs.loyalty = {
        program_id: s.loyalty.programId,
        points: s.loyalty.points,
        amount_minor: s.loyalty.amountMinor,
        currency: s.loyalty.currency,
        balance: s.loyalty.balance,
      };
    }
    return inputs;
  }

  async decide(s: RiskSubject): Promise<RiskDecision> {
    // One after the other: the rules are almost always the cached copy, and in-process counters answer at once.
    const rules = await this.rules.get();
    const models = await this.models.get();
    const counted = await this.counterFeatures(s);
    const notComputed = NOT_COMPUTED.get(s.operation) as Set<string>;
    const features: FeatureValues = {};
    for (const [name, value] of Object.entries(counted.values))
      if (!notComputed.has(name)) features[name] = value;
    if (s.facts) {
      features.linked_accounts = s.facts.linkedAccounts;
      features.linked_new_accounts = s.facts.linkedNewAccounts;
      features.linked_cards = s.facts.linkedCards;
      features.linked_devices = s.facts.linkedDevices;
      features.linked_addresses = s.facts.linkedAddresses;
      features.linked_strong_links = s.facts.linkedStrongLinks;
      features.shared_identifier_customers = s.facts.sharedIdentifierCustomers;
      features.customer_redemptions = s.facts.customerRedemptions;
      if (s.facts.partnerCap != null && !notComputed.has('partner_cap'))
        features.partner_cap = s.facts.partnerCap;
      const ratio = s.cart ? amountRatio(s.cart.subtotalMinor, s.facts.meanSubtotalMinor) : null;
      if (ratio !== null) features.order_amount_ratio = ratio;
    }
    if (s.context.emailDisposable !== null && !notComputed.has('email_disposable'))
      features.email_disposable = s.context.emailDisposable ? 1 : 0;
    if (s.campaign && !notComputed.has('campaign_planned_per_hour'))
      features.campaign_planned_per_hour = plannedPerHour(s.campaign.plannedPeaks, s.now);
    if (s.context.accountCreatedAt && !notComputed.has('account_age_hours'))
      features.account_age_hours = accountAgeHours(s.context.accountCreatedAt, s.now);
    if (s.extraFeatures) Object.assign(features, s.extraFeatures);
    // Scored over the other features only (the score is not an input to itself), and only for the
    // operations a model is trained on: the stored decisions of checkouts.
    const modelScores: DecisionModelScores = {};
    if (!notComputed.has('model_score')) {
      for (const m of models) {
        modelScores[m.status] = { version: m.version, score: score(m.model, features) };
      }
    }
    if (modelScores.enforcing) features.model_score = modelScores.enforcing.score;

    const inputs = this.inputs(s, features);
    const activation = toActivation(inputs);
    const unavailable = new Set(counted.unavailable.filter((f) => !notComputed.has(f)));
    const outcomes: RuleOutcome[] = [];
    /** The feature values each reported rule read (rules that did not fire are not reported). */
    const seen = new Map<string, FeatureValues>();
    const saw = (id: string, read: readonly string[]) => {
      const values: FeatureValues = {};
      for (const f of read) if (features[f] !== undefined) values[f] = features[f];
      seen.set(id, values);
    };
    for (const { rule, compiled, compileError } of rules) {
      if (!rule.enabled) continue;
      if (rule.campaignId !== null && rule.campaignId !== s.campaign?.id) continue;
      if (rule.expiresAt !== null && rule.expiresAt.getTime() <= s.now.getTime()) continue;
      const ref = { id: rule.id, name: rule.name, action: rule.action, mode: rule.mode, reason: rule.reason };
      if (!compiled) {
        this.stats.ruleErrors++;
        outcomes.push({ rule: ref, result: 'error', detail: compileError ?? 'does not compile' });
        continue;
      }
      // A rule about what this operation does not have (a wallet read's order, a conversion's code, a
      // checkout's `loyalty`) does not apply: it neither fires nor counts as an error.
      if (compiled.variables.some((v) => inputs[v] === undefined)) continue;
      if (compiled.features.some((f) => notComputed.has(f))) continue;
      const missing = compiled.features.filter((f) => unavailable.has(f));
      if (missing.length > 0) {
        saw(rule.id, compiled.features);
        outcomes.push({ rule: ref, result: 'unavailable', detail: missing.join(', ') });
        continue;
      }
      try {
        const fired = compiled.evaluate(activation);
        if (fired) saw(rule.id, compiled.features);
        outcomes.push({ rule: ref, result: fired ? 'fired' : 'not_fired' });
      } catch (err) {
        saw(rule.id, compiled.features);
        this.stats.ruleErrors++;
        outcomes.push({
          rule: ref,
          result: 'error',
          detail: err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err),
        });
      }
    }
    for (const r of s.remediations ?? []) outcomes.push({ rule: r, result: 'fired' });
    const resolution: Resolution = resolveDecision({
      outcomes,
      allowListed: s.allowListed,
      stepUp: s.stepUp !== null,
    });
    this.stats.decisions[resolution.action]++;
    if (
      resolution.action === 'review' &&
      resolution.because.length > 0 &&
      resolution.because.every((o) => o.result === 'unavailable')
    ) {
      this.stats.failOpenReviews++;
    }
    return {
      id: s.decisionId ?? newId('decision', s.now.getTime()),
      action: resolution.action,
      because: resolution.because.map((o) => o.rule.id),
      holdWith: resolution.action === 'review' ? holdsOf(resolution.because, rules) : [],
      rules: outcomes
        .filter((o) => o.result !== 'not_fired')
        .map((o) => ({
          ...o.rule,
          result: o.result as DecisionRule['result'],
          ...(o.detail !== undefined ? { detail: o.detail } : {}),
          features: seen.get(o.rule.id) ?? {},
        })),
      features,
      unavailableFeatures: [...unavailable].sort(),
      allowListed: s.allowListed,
      challengeSatisfied: resolution.challengeSatisfied,
      stepUp: s.stepUp,
      inputs,
      model: modelScores,
    };
  }

  /**
   * Count the attempt into the features of later ones. Not awaited by callers' answers: a failure is
   * counted and logged (the attempt itself already happened).
   */
  record(a: AttemptRecord): void {
    const events: WindowEvent[] = [];
    // Each event is kept for the window of the feature that counts it (the registry's, one place).
    const w = (name: string) => FEATURE_WINDOW[name] as number;
    const device = a.context.deviceKey;
    if (device)
      events.push({ key: `dv:${device}`, member: a.customerId, windowMs: w('device_customers_24h') });
    if (a.redemptionId && a.campaignId) {
      if (device) {
        events.push({
          key: `dc:${device}:${a.campaignId}`,
          member: a.redemptionId,
          windowMs: w('device_campaign_redemptions_24h'),
        });
      }
      const payment = a.context.all.find((i) => i.type === 'payment');
      if (payment && a.codeId) {
        events.push({
          key: `cp:${a.codeId}`,
          member: payment.hash,
          windowMs: w('code_payment_instruments_30d'),
        });
      }
      const created = a.context.accountCreatedAt;
      if (created && accountAgeHours(created, a.now) < 24) {
        events.push({
          key: `cn:${a.campaignId}`,
          member: a.customerId,
          windowMs: w('campaign_new_accounts_1h'),
        });
        if (a.codeId) {
          events.push({
            key: `cna:${a.codeId}`,
            member: a.customerId,
            windowMs: w('code_new_accounts_24h'),
          });
        }
      }
      if (a.partner) {
        events.push({
          key: `pr:${a.campaignId}:${a.partner}`,
          member: a.redemptionId,
          windowMs: w('partner_redemptions_1h'),
        });
      }
    }
    if (a.context.ipKey) {
      events.push({ key: `ic:${a.context.ipKey}`, member: a.customerId, windowMs: w('ip_customers_1h') });
    }
    if (a.failed) {
      events.push({
        key: `cf:${a.customerId}`,
        member: eventId(),
        windowMs: w('customer_failed_attempts_1h'),
      });
    }
    if (a.failed && a.context.ipKey) {
      events.push({ key: `if:${a.context.ipKey}`, member: eventId(), windowMs: w('ip_failed_attempts_1h') });
    }
    if (events.length === 0) return;
    this.count(events, a.now, 'risk feature counters could not record an attempt');
  }

  /** Adds to the window counters without holding up the answer; settled() waits for it. */
  private count(events: WindowEvent[], now: Date, failure: string): void {
    const done = this.counters
      .add(events, now.getTime())
      .catch((err: unknown) => {
        this.stats.recordErrors++;
        this.onError(err, failure);
      })
      .finally(() => this.recording.delete(done));
    this.recording.add(done);
  }

  /**
   * A caller locked out for failed guesses asked for this code: a guesser that then rotates its
   * account, address and device still leaves the code it was about to try behind.
   */
  recordLockedTry(codeKey: string, now: Date): void {
    const windowMs = FEATURE_WINDOW.code_locked_tries_1h as number;
    this.count(
      [{ key: `cl:${codeKey}`, member: eventId(), windowMs }],
      now,
      'risk feature counters could not record a locked try',
    );
  }

  /** Wait for the attempts being recorded (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.recording]);
  }
}

/** The reach of the review rules that fired and set a hold (a fail-open review reaches nothing more). */
function holdsOf(because: readonly RuleOutcome[], rules: readonly LoadedRule[]): HoldWith[] {
  const holds = new Set<HoldWith>();
  for (const o of because) {
    if (o.result !== 'fired') continue;
    const hold = rules.find((r) => r.rule.id === o.rule.id)?.rule.holdWith;
    if (hold) holds.add(hold);
  }
  return [...holds];
}
