/**
 * Analysts' rules: saved only when their expression type-checks, audited, and taken into account by
 * every node for requests begun 2 s after the commit (the engine re-reads the rule set when its stamp
 * changes). Backtests evaluate a saved or draft rule over the stored decisions of a period — over exactly the inputs each
 * live decision saw — and score it against the labels present.
 */
import {
  actionIfEnforced,
  FEATURES,
  featureOperations,
  type HoldWith,
  RISK_ACTIONS,
  type RiskAction,
  type RuleMode,
} from '../domain/risk.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { DEFAULT_PACK } from '../risk/default-pack.js';
import { type RiskEngine, storedInputs } from '../risk/engine.js';
import { compileRule, type SourcePosition, toActivation } from '../risk/rule-language.js';
import { insertAudit } from '../store/audit.js';
import { findCampaign } from '../store/campaigns.js';
import {
  countDecisions,
  decisionCounts,
  decisionsBetween,
  deleteRule,
  findRule,
  insertRule,
  listRules,
  type RiskRule,
  type RulePatch,
  ruleHitGroups,
  type StoredDecision,
  type StoredOperation,
  updateRule,
} from '../store/risk.js';
import { bumpStamp } from '../store/stamps.js';
import type { Actor, ServiceContext } from './context.js';

export interface RuleInput {
  name: string;
  description?: string | undefined;
  expression: string;
  action: RiskAction;
  reason: string;
  mode: RuleMode;
  holdWith?: HoldWith | null | undefined;
  campaignId?: string | null | undefined;
  expiresAt?: Date | null | undefined;
  enabled?: boolean | undefined;
}

export interface BacktestResult {
  from: Date;
  to: Date;
  /** Stored decisions evaluated (in scope of the rule's campaign, if any). */
  evaluated: number;
  hits: number;
  /** Decisions the rule could not be evaluated on (a feature it reads was unavailable then) or failed on. */
  unavailable: number;
  errors: number;
  /** Hits by how the attempt actually ended. */
  hitsByOutcome: Record<string, number>;
  labeled: { abuse: number; legitimate: number };
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  /** tp / (tp + fp) over labeled hits; null without labeled hits. */
  precision: number | null;
  /** tp / (tp + fn) over abuse labels; null without abuse labels. */
  recall: number | null;
  /** Labeled legitimate decisions the rule stays silent on. */
  trueNegatives: number;
  /** Up to 20 decision ids the rule hit, oldest first. */
  sampleHits: string[];
  /** Up to EXAMPLES_PER_CELL decisions of each cell of the confusion matrix, oldest first. */
  examples: Record<ConfusionCell, BacktestExample[]>;
  /** More decisions than a backtest reads were in the period; the figures cover the first ones. */
  truncated: boolean;
}

export type ConfusionCell = 'true_positives' | 'false_positives' | 'false_negatives' | 'true_negatives';

/** A decision shown as an example of a confusion-matrix cell. */
export interface BacktestExample {
  id: string;
  createdAt: Date;
  campaignId: string;
  customerId: string;
  redemptionId: string | null;
  action: RiskAction;
  outcome: string;
}

/** Examples kept per cell: enough to look at, bounded so a long period answers small. */
export const EXAMPLES_PER_CELL = 10;

/** One rule's part in the decisions of a period. */
export interface RuleStats {
  ruleId: string;
  /**
   * Stored decisions of the period the rule applies to (the operations whose variables and features it
   * reads; its campaign's redemptions, if it has one) since it was created.
   */
  decisions: number;
  /** Decisions the rule fired on, in either mode. */
  hits: number;
  enforcedHits: number;
  shadowHits: number;
  unavailable: number;
  errors: number;
  /** hits / decisions; null without decisions. */
  hitRate: number | null;
  /**
   * Decisions it fired on (or could not be evaluated on) while in shadow, by the action taken and the
   * one it would have led to had it been enforced: `decided != wouldBe` is a change.
   */
  shadow: { decided: RiskAction; wouldBe: RiskAction; decisions: number }[];
}

export interface RuleStatsResult {
  from: Date;
  to: Date;
  decisions: number;
  rules: RuleStats[];
}

/** Longest period of the hit-rate statistics: each read scans the period's decisions. */
export const STATS_MAX_DAYS = 31;

/** A backtest reads at most this many decisions. */
export const BACKTEST_MAX_DECISIONS = 200_000;
const PAGE = 2_000;

function invalidExpression(message: string, position?: SourcePosition): AppError {
  return new AppError('rule_invalid', `expression: ${message}`, {
    errors: [{ field: 'body/expression', message, ...(position ? { position } : {}) }],
  });
}

function validPeriod(period: { from: Date; to: Date }, where: 'body' | 'querystring'): void {
  if (period.to.getTime() <= period.from.getTime()) {
    throw new AppError('validation_failed', '`to` must be after `from`', {
      errors: [{ field: `${where}/to`, message: 'must be after from' }],
    });
  }
}

/** The variables each stored operation's decisions carry (the engine's inputs for it). */
const VARIABLES_OF: Record<StoredOperation, ReadonlySet<string>> = {
  redemption: new Set(['features', 'request', 'customer', 'order', 'campaign', 'code']),
  conversion: new Set(['features', 'request', 'customer', 'loyalty']),
  wallet_read: new Set(['features', 'request', 'customer']),
};
const STORED_OPERATIONS = Object.keys(VARIABLES_OF) as StoredOperation[];
const FEATURE_OPERATIONS = new Map(FEATURES.map((f) => [f.name, featureOperations(f)]));

/**
 * The stored operations a rule applies to, as the engine decides it: only redemptions of its campaign
 * when it has one; otherwise those that carry every variable and compute every feature it reads.
 */
function operationsOf(rule: RiskRule): StoredOperation[] {
  const compiled = compileRule(rule.expression);
  const candidates: StoredOperation[] = rule.campaignId === null ? STORED_OPERATIONS : ['redemption'];
  if (!compiled.ok) return candidates;
  return candidates.filter(
    (op) =>
      compiled.rule.variables.every((v) => VARIABLES_OF[op].has(v)) &&
      compiled.rule.features.every((f) => FEATURE_OPERATIONS.get(f)?.includes(op) ?? true),
  );
}

function exampleOf(d: StoredDecision): BacktestExample {
  return {
    id: d.id,
    createdAt: d.createdAt,
    campaignId: d.campaignId,
    customerId: d.customerId,
    redemptionId: d.redemptionId,
    action: d.action,
    outcome: d.outcome,
  };
}

export class RuleService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly engine: RiskEngine,
  ) {}

  private compile(expression: string) {
    const compiled = compileRule(expression);
    if (!compiled.ok) throw invalidExpression(compiled.message, compiled.position);
    return compiled.rule;
  }

  private async requireCampaign(id: string | null | undefined): Promise<void> {
    if (id && !(await findCampaign(this.ctx.db, id))) {
      throw new AppError('campaign_not_found', `no campaign ${id}`);
    }
  }

  /** Insert the shipped rules that were never inserted (a deleted one stays deleted). */
  async seedDefaultPack(): Promise<number> {
    const now = this.ctx.clock.now();
    let added = 0;
    for (const r of DEFAULT_PACK) {
      this.compile(r.expression);
      const inserted = await insertRule(
        this.ctx.db,
        {
          ...r,
          holdWith: r.holdWith ?? null,
          campaignId: null,
          expiresAt: null,
          enabled: true,
          pack: 'default',
          createdBy: 'promoguard',
        },
        now,
        true,
      );
      if (inserted) added++;
    }
    if (added > 0) {
      await bumpStamp(this.ctx.db, 'rules');
      this.engine.invalidateRules();
    }
    return added;
  }

  async create(input: RuleInput, actor: Actor): Promise<RiskRule> {
    this.compile(input.expression);
    holdsOnlyOnReview(input.action, input.holdWith ?? null);
    await this.requireCampaign(input.campaignId);
    const now = this.ctx.clock.now();
    const rule = await this.ctx.db.transaction().execute(async (trx) => {
      const created = await insertRule(
        trx,
        {
          id: newId('rule', now.getTime()),
          name: input.name,
          description: input.description ?? '',
          expression: input.expression,
          action: input.action,
          reason: input.reason,
          mode: input.mode,
          holdWith: input.holdWith ?? null,
          campaignId: input.campaignId ?? null,
          expiresAt: input.expiresAt ?? null,
          enabled: input.enabled ?? true,
          pack: null,
          createdBy: actor,
        },
        now,
      );
      if (!created) throw new Error('rule insert returned nothing');
      await insertAudit(
        trx,
        { actor, action: 'rule.created', targetId: created.id, reason: null, details: { rule: created } },
        now,
      );
      await bumpStamp(trx, 'rules');
      return created;
    });
    this.engine.invalidateRules();
    return rule;
  }

  async update(id: string, patch: RulePatch, actor: Actor): Promise<RiskRule> {
    if (patch.expression !== undefined) this.compile(patch.expression);
    await this.requireCampaign(patch.campaignId);
    const now = this.ctx.clock.now();
    const rule = await this.ctx.db.transaction().execute(async (trx) => {
      const before = await findRule(trx, id);
      if (!before) throw new AppError('rule_not_found');
      holdsOnlyOnReview(
        patch.action ?? before.action,
        patch.holdWith !== undefined ? patch.holdWith : before.holdWith,
      );
      const after = await updateRule(trx, id, patch, now);
      if (!after) throw new AppError('rule_not_found');
      await insertAudit(
        trx,
        { actor, action: 'rule.updated', targetId: id, reason: null, details: { before, after } },
        now,
      );
      await bumpStamp(trx, 'rules');
      return after;
    });
    this.engine.invalidateRules();
    return rule;
  }

  async remove(id: string, actor: Actor): Promise<void> {
    const now = this.ctx.clock.now();
    await this.ctx.db.transaction().execute(async (trx) => {
      const before = await findRule(trx, id);
      if (!before || !(await deleteRule(trx, id, now))) throw new AppError('rule_not_found');
      await insertAudit(
        trx,
        { actor, action: 'rule.deleted', targetId: id, reason: null, details: { before } },
        now,
      );
      await bumpStamp(trx, 'rules');
    });
    this.engine.invalidateRules();
  }

  async get(id: string): Promise<RiskRule> {
    const rule = await findRule(this.ctx.db, id);
    if (!rule) throw new AppError('rule_not_found');
    return rule;
  }

  list(): Promise<RiskRule[]> {
    return listRules(this.ctx.db);
  }

  /** Check an expression without saving it: the features it reads, or a 400 naming the problem. */
  check(expression: string): { features: string[] } {
    return { features: this.compile(expression).features };
  }

  /**
   * Every rule's hits over the stored decisions of a period (redemption attempts and loyalty
   * operations): one pass over the period's decisions for the rule outcomes they recorded, one count
   * per campaign and loyalty operation, and one count for each rule created inside the period (its
   * rate counts only the decisions it could have seen).
   */
  async stats(period: { from: Date; to: Date }): Promise<RuleStatsResult> {
    validPeriod(period, 'querystring');
    if (period.to.getTime() - period.from.getTime() > STATS_MAX_DAYS * 86_400_000) {
      throw new AppError('validation_failed', `a period spans at most ${STATS_MAX_DAYS} days`, {
        errors: [{ field: 'querystring/from', message: `at most ${STATS_MAX_DAYS} days before to` }],
      });
    }
    const [rules, groups, counts] = await Promise.all([
      listRules(this.ctx.db),
      ruleHitGroups(this.ctx.db, period),
      decisionCounts(this.ctx.db, period),
    ]);
    let redemptions = 0;
    for (const n of counts.byCampaign.values()) redemptions += n;
    const byRule = new Map<string, RuleStats>();
    for (const rule of rules) {
      const operations = operationsOf(rule);
      let decisions = 0;
      if (rule.createdAt.getTime() >= period.to.getTime()) {
        decisions = 0;
      } else if (rule.createdAt.getTime() > period.from.getTime()) {
        decisions = await countDecisions(this.ctx.db, {
          from: rule.createdAt,
          to: period.to,
          campaignId: rule.campaignId,
          operations,
        });
      } else {
        for (const op of operations) {
          if (op === 'redemption') {
            decisions +=
              rule.campaignId === null ? redemptions : (counts.byCampaign.get(rule.campaignId) ?? 0);
          } else {
            decisions += counts[op];
          }
        }
      }
      byRule.set(rule.id, {
        ruleId: rule.id,
        decisions,
        hits: 0,
        enforcedHits: 0,
        shadowHits: 0,
        unavailable: 0,
        errors: 0,
        hitRate: null,
        shadow: [],
      });
    }
    const transitions = new Map<string, Map<string, number>>();
    for (const g of groups) {
      const stats = byRule.get(g.ruleId);
      // Outcomes of deleted rules and of remediations (which act like rules) are not listed.
      if (!stats) continue;
      if (g.result === 'fired') {
        stats.hits += g.count;
        if (g.mode === 'enforce') stats.enforcedHits += g.count;
        else if (g.mode === 'shadow') stats.shadowHits += g.count;
      } else if (g.result === 'unavailable') stats.unavailable += g.count;
      else if (g.result === 'error') stats.errors += g.count;
      if (g.mode === 'shadow' && g.result !== 'error' && RISK_ACTIONS.includes(g.ruleAction)) {
        const wouldBe = actionIfEnforced(g);
        const key = `${g.decided}>${wouldBe}`;
        const mine = transitions.get(g.ruleId) ?? new Map<string, number>();
        mine.set(key, (mine.get(key) ?? 0) + g.count);
        transitions.set(g.ruleId, mine);
      }
    }
    const order = (a: RiskAction) => RISK_ACTIONS.indexOf(a);
    for (const stats of byRule.values()) {
      stats.hitRate = stats.decisions > 0 ? Math.min(1, stats.hits / stats.decisions) : null;
      stats.shadow = [...(transitions.get(stats.ruleId) ?? new Map<string, number>())]
        .map(([key, decisions]) => {
          const [decided, wouldBe] = key.split('>') as [RiskAction, RiskAction];
          return { decided, wouldBe, decisions };
        })
        .sort((a, b) => order(a.decided) - order(b.decided) || order(a.wouldBe) - order(b.wouldBe));
    }
    return {
      from: period.from,
      to: period.to,
      decisions: redemptions + counts.conversion + counts.wallet_read,
      rules: [...byRule.values()],
    };
  }

  async backtest(
    rule: { expression: string; campaignId: string | null },
    period: { from: Date; to: Date },
  ): Promise<BacktestResult> {
    validPeriod(period, 'body');
    const compiled = this.compile(rule.expression);
    const result: BacktestResult = {
      from: period.from,
      to: period.to,
      evaluated: 0,
      hits: 0,
      unavailable: 0,
      errors: 0,
      hitsByOutcome: {},
      labeled: { abuse: 0, legitimate: 0 },
      truePositives: 0,
      falsePositives: 0,
      falseNegatives: 0,
      trueNegatives: 0,
      precision: null,
      recall: null,
      sampleHits: [],
      examples: { true_positives: [], false_positives: [], false_negatives: [], true_negatives: [] },
      truncated: false,
    };
    const keep = (cell: ConfusionCell, d: StoredDecision) => {
      if (result.examples[cell].length < EXAMPLES_PER_CELL) result.examples[cell].push(exampleOf(d));
    };
    let after: string | undefined;
    for (;;) {
      const page = await decisionsBetween(this.ctx.db, {
        from: period.from,
        to: period.to,
        after,
        limit: PAGE,
        campaignId: rule.campaignId ?? undefined,
      });
      for (const d of page) {
        if (result.evaluated >= BACKTEST_MAX_DECISIONS) {
          result.truncated = true;
          break;
        }
        result.evaluated++;
        if (d.label) result.labeled[d.label]++;
        const inputs = storedInputs(d.decision);
        const unavailable = (d.decision.unavailable_features ?? []) as string[];
        let hit = false;
        if (compiled.features.some((f) => unavailable.includes(f))) {
          result.unavailable++;
        } else {
          try {
            hit = compiled.evaluate(toActivation(inputs));
          } catch {
            result.errors++;
          }
        }
        if (hit) {
          result.hits++;
          result.hitsByOutcome[d.outcome] = (result.hitsByOutcome[d.outcome] ?? 0) + 1;
          if (result.sampleHits.length < 20) result.sampleHits.push(d.id);
          if (d.label === 'abuse') {
            result.truePositives++;
            keep('true_positives', d);
          }
          if (d.label === 'legitimate') {
            result.falsePositives++;
            keep('false_positives', d);
          }
        } else if (d.label === 'abuse') {
          result.falseNegatives++;
          keep('false_negatives', d);
        } else if (d.label === 'legitimate') {
          result.trueNegatives++;
          keep('true_negatives', d);
        }
      }
      const last = page[page.length - 1];
      if (result.truncated || page.length < PAGE || !last) break;
      after = last.id;
    }
    const labeledHits = result.truePositives + result.falsePositives;
    result.precision = labeledHits > 0 ? result.truePositives / labeledHits : null;
    result.recall = result.labeled.abuse > 0 ? result.truePositives / result.labeled.abuse : null;
    return result;
  }
}

/** Only a hold brings others with it: a block or challenge of one attempt says nothing of the earlier ones. */
function holdsOnlyOnReview(action: RiskAction, holdWith: HoldWith | null): void {
  if (holdWith === null || action === 'review') return;
  throw new AppError('validation_failed', 'hold_with applies to a rule whose action is review', {
    errors: [{ field: 'body/hold_with', message: `hold_with needs action review, not ${action}` }],
  });
}
