/**
 * Analysts' rules: saved only when their expression type-checks, audited, and taken into account by
 * every node for requests begun 2 s after the commit (the engine re-reads the rule set when its stamp
 * changes). Backtests evaluate a saved or draft rule over the stored decisions of a period — over exactly the inputs each
 * live decision saw — and score it against the labels present.
 */
import type { RiskAction, RuleMode } from '../domain/risk.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { DEFAULT_PACK } from '../risk/default-pack.js';
import type { RiskEngine } from '../risk/engine.js';
import { compileRule, type DecisionInputs, toActivation } from '../risk/rule-language.js';
import { insertAudit } from '../store/audit.js';
import { findCampaign } from '../store/campaigns.js';
import {
  decisionsBetween,
  deleteRule,
  findRule,
  insertRule,
  listRules,
  type RiskRule,
  type RulePatch,
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
  /** Up to 20 decision ids the rule hit, oldest first. */
  sampleHits: string[];
  /** More decisions than a backtest reads were in the period; the figures cover the first ones. */
  truncated: boolean;
}

/** A backtest reads at most this many decisions. */
export const BACKTEST_MAX_DECISIONS = 200_000;
const PAGE = 2_000;

function invalidExpression(message: string): AppError {
  return new AppError('rule_invalid', `expression: ${message}`, {
    errors: [{ field: 'body/expression', message }],
  });
}

export class RuleService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly engine: RiskEngine,
  ) {}

  private compile(expression: string) {
    const compiled = compileRule(expression);
    if (!compiled.ok) throw invalidExpression(compiled.message);
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
        { ...r, campaignId: null, expiresAt: null, enabled: true, pack: 'default', createdBy: 'promoguard' },
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

  async backtest(
    rule: { expression: string; campaignId: string | null },
    period: { from: Date; to: Date },
  ): Promise<BacktestResult> {
    if (period.to.getTime() <= period.from.getTime()) {
      throw new AppError('validation_failed', '`to` must be after `from`', {
        errors: [{ field: 'body/to', message: 'must be after from' }],
      });
    }
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
      precision: null,
      recall: null,
      sampleHits: [],
      truncated: false,
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
        const inputs = (d.decision.inputs ?? {}) as DecisionInputs;
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
          if (d.label === 'abuse') result.truePositives++;
          if (d.label === 'legitimate') result.falsePositives++;
        } else if (d.label === 'abuse') {
          result.falseNegatives++;
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
