import { randomBytes } from 'node:crypto';
import {
  type CodePattern,
  checkPattern,
  displayGeneratedCode,
  generateCodes,
  isPlausibleForPattern,
  normalizeCode,
  type RandomBytes,
} from '../domain/codes.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { insertAudit } from '../store/audit.js';
import { findCampaign } from '../store/campaigns.js';
import { type CodeStats, codeStats } from '../store/code-stats.js';
import {
  codesWithShape,
  countCodes,
  exportCodesPage,
  findCode,
  type GeneratedCodes,
  insertBatch,
  insertCodes,
  insertGeneratedCodes,
  listCodes,
  listPatterns,
  lockCodeShapes,
  type NewCodeRow,
  revokeCode,
} from '../store/codes.js';
import { CodeShapeConflictError } from '../store/errors.js';
import { appendEvents } from '../store/outbox.js';
import type { CampaignRecord, CodeRecord } from '../store/rows.js';
import type { PatternIndex } from './code-patterns.js';
import type { Actor, ServiceContext } from './context.js';

export interface CodeSpec {
  code: string;
  customerId?: string | null | undefined;
  maxUses?: number | null | undefined;
  partner?: string | null | undefined;
  status?: 'active' | 'revoked' | undefined;
}

export interface GenerateSpec {
  count: number;
  prefix?: string | undefined;
  randomLength?: number | undefined;
  maxUses?: number | undefined;
  customerId?: string | null | undefined;
  partner?: string | null | undefined;
}

export type Progress = (done: number, total: number) => void;

const CHUNK = 5_000;
/** Generated codes per statement (and per commit in the CLI): few round trips, a bounded parameter. */
const GENERATE_CHUNK = 25_000;
/** Codes per page of an export: one page is one query and one text of a few MB. */
const EXPORT_PAGE = 20_000;

/**
 * A public code's text goes into the audit trail (it is published anyway); a unique code's does not:
 * it is a bearer secret, and the trail is read by more keys than may see codes.
 */
const shownText = (kind: 'public' | 'unique', code: string) => (kind === 'public' ? { code } : {});
export const DEFAULT_RANDOM_LENGTH = 12;

export class CodeService {
  constructor(
    private readonly ctx: ServiceContext,
    readonly patterns: PatternIndex,
    /** The CSPRNG codes are drawn from (a test may make it repeat itself, to force collisions). */
    private readonly random: RandomBytes = randomBytes,
  ) {}

  static patternLoader(ctx: ServiceContext): () => Promise<CodePattern[]> {
    return () => listPatterns(ctx.db);
  }

  private async requireCampaign(id: string): Promise<CampaignRecord> {
    const campaign = await findCampaign(this.ctx.db, id);
    if (!campaign) throw new AppError('campaign_not_found');
    if (campaign.status === 'ended')
      throw new AppError('campaign_not_editable', 'codes cannot be added to an ended campaign');
    return campaign;
  }

  /**
   * Normalize chosen codes, refusing bad text and duplicates. A text that would pass for a generated
   * code is refused by the database's shape guard (routines.ts), the one place that sees every node.
   */
  private prepare(campaignId: string, specs: CodeSpec[]): NewCodeRow[] {
    const errors: { index: number; code: string; message: string }[] = [];
    const seen = new Set<string>();
    const rows: NewCodeRow[] = [];
    specs.forEach((spec, index) => {
      const normalized = normalizeCode(spec.code);
      if (normalized === null) {
        errors.push({
          index,
          code: spec.code.slice(0, 80),
          message: 'must be 1-64 letters or digits (separators ignored)',
        });
      } else if (seen.has(normalized)) {
        errors.push({ index, code: spec.code, message: 'appears twice' });
      } else {
        seen.add(normalized);
        rows.push({
          id: newId('code'),
          campaign_id: campaignId,
          batch_id: null,
          code: spec.code.trim(),
          normalized,
          kind: spec.maxUses === null || spec.maxUses === undefined ? 'public' : 'unique',
          max_uses: spec.maxUses ?? null,
          customer_id: spec.customerId ?? null,
          amount_minor: null,
          partner: spec.partner ?? null,
          status: spec.status ?? 'active',
        });
      }
    });
    if (errors.length > 0) {
      throw new AppError('validation_failed', `${errors.length} code(s) cannot be added`, {
        errors: errors.slice(0, 100),
      });
    }
    return rows;
  }

  /**
   * Add chosen codes (one public code, or an import). All or nothing: if any text is invalid or
   * already taken, nothing is added and every problem is reported.
   */
  private async addCodes(
    campaignId: string,
    specs: CodeSpec[],
    actor: Actor,
    onProgress?: Progress,
  ): Promise<NewCodeRow[]> {
    await this.requireCampaign(campaignId);
    const rows = this.prepare(campaignId, specs);
    const now = this.ctx.clock.now();
    await this.ctx.db
      .transaction()
      .execute(async (trx) => {
        for (let i = 0; i < rows.length; i += CHUNK) {
          const chunk = rows.slice(i, i + CHUNK);
          const inserted = await insertCodes(trx, chunk, now);
          if (inserted.size !== chunk.length) {
            const taken = chunk.filter((r) => !inserted.has(r.normalized)).map((r) => r.code);
            throw new AppError('code_already_exists', `${taken.length} code(s) already exist`, {
              codes: taken.slice(0, 100),
            });
          }
          onProgress?.(Math.min(i + CHUNK, rows.length), rows.length);
        }
        const single = rows.length === 1 ? rows[0] : undefined;
        await appendEvents(
          trx,
          [
            single
              ? {
                  type: 'code.created',
                  aggregateId: single.id,
                  payload: { campaign_id: campaignId, code_id: single.id, actor },
                }
              : {
                  type: 'code.imported',
                  aggregateId: campaignId,
                  payload: { campaign_id: campaignId, count: rows.length, actor },
                },
          ],
          now,
        );
        await insertAudit(
          trx,
          single
            ? {
                actor,
                action: 'code.created',
                targetId: single.id,
                reason: null,
                details: {
                  campaign_id: campaignId,
                  ...shownText(single.kind, single.code),
                  kind: single.kind,
                  max_uses: single.max_uses,
                  customer_id: single.customer_id,
                  partner: single.partner,
                  status: single.status,
                },
              }
            : {
                actor,
                action: 'code.imported',
                targetId: campaignId,
                reason: null,
                details: { campaign_id: campaignId, count: rows.length },
              },
          now,
        );
      })
      .catch((err: unknown) => {
        if (err instanceof CodeShapeConflictError) {
          throw new AppError('code_conflicts_with_pattern', err.message, { codes: err.codes });
        }
        throw err;
      });
    this.ctx.afterCommit();
    return rows;
  }

  /** One chosen code: a public multi-use code (no max_uses) or a single- or few-use one. */
  async createCode(campaignId: string, spec: CodeSpec, actor: Actor): Promise<CodeRecord> {
    const [row] = await this.addCodes(campaignId, [spec], actor);
    const code = row ? await findCode(this.ctx.db, row.normalized) : null;
    if (!code) throw new Error('created code not found');
    return code;
  }

  /** Many chosen codes (CSV import): all or nothing. Returns how many were added. */
  async importCodes(
    campaignId: string,
    specs: CodeSpec[],
    actor: Actor,
    onProgress?: Progress,
  ): Promise<number> {
    if (specs.length === 0) throw new AppError('validation_failed', 'no codes to import');
    return (await this.addCodes(campaignId, specs, actor, onProgress)).length;
  }

  /**
   * Generate `count` unique codes. Uniqueness is the database's unique index: a code that collides
   * (with an existing code or one in the same chunk) is drawn again until the count is reached.
   * `atomic` puts the whole batch in one transaction (the HTTP API); the CLI commits chunk by chunk so
   * a million codes need not sit in one transaction, and reports progress as it goes.
   */
  async generate(
    campaignId: string,
    spec: GenerateSpec,
    actor: Actor,
    options: { atomic: boolean; onProgress?: Progress },
  ): Promise<{ batchId: string; count: number; pattern: CodePattern }> {
    const prefix = normalizeCode(spec.prefix ?? '') ?? '';
    if ((spec.prefix ?? '').replace(/[\s\-_.]/g, '') !== '' && prefix === '') {
      throw new AppError('validation_failed', 'prefix must be letters and digits');
    }
    const pattern: CodePattern = { prefix, randomLength: spec.randomLength ?? DEFAULT_RANDOM_LENGTH };
    const problem = checkPattern(pattern);
    if (problem) throw new AppError('validation_failed', `invalid code pattern: ${problem}`);
    await this.requireCampaign(campaignId);

    const now = this.ctx.clock.now();
    const batchId = newId('batch', now.getTime());
    const maxUses = spec.maxUses ?? 1;
    // Under the shape lock: no chosen code may keep this batch's shape while failing its check.
    const createBatch = async (trx: ServiceContext['db']) => {
      await lockCodeShapes(trx);
      const known = await listPatterns(trx);
      const clashes = (await codesWithShape(trx, pattern)).filter(
        (c) => !isPlausibleForPattern(c, pattern) && !known.some((p) => isPlausibleForPattern(c, p)),
      );
      if (clashes.length > 0) {
        throw new AppError('code_conflicts_with_pattern', 'existing codes have this prefix and length', {
          codes: clashes,
        });
      }
      await insertBatch(trx, { id: batchId, campaignId, pattern, requested: spec.count }, now);
      // With the batch row: the CLI fills a batch outside this transaction, but who asked for it and
      // for how many is on record either way.
      await insertAudit(
        trx,
        {
          actor,
          action: 'code.batch_generated',
          targetId: batchId,
          reason: null,
          details: {
            campaign_id: campaignId,
            count: spec.count,
            prefix,
            random_length: pattern.randomLength,
            max_uses: maxUses,
            customer_id: spec.customerId ?? null,
            partner: spec.partner ?? null,
          },
        },
        now,
      );
    };
    const draw = (want: number): GeneratedCodes => {
      // A Set drops a code drawn twice in one chunk; the unique index skips one that exists already.
      const normalized = [...new Set(generateCodes(pattern, want, this.random))];
      return {
        campaignId,
        batchId,
        maxUses,
        customerId: spec.customerId ?? null,
        partner: spec.partner ?? null,
        ids: normalized.map(() => newId('code')),
        codes: normalized.map((n) => displayGeneratedCode(n, pattern)),
        normalized,
      };
    };
    const fill = async (db: ServiceContext['db']) => {
      let made = 0;
      let chunk: GeneratedCodes | null = draw(Math.min(GENERATE_CHUNK, spec.count));
      while (chunk) {
        const inserting = insertGeneratedCodes(db, chunk, now);
        // The next chunk is drawn while the database inserts this one, sized as if every code of this
        // one goes in (so never more than asked); codes that collided are drawn again at the end.
        const ahead: number = spec.count - made - chunk.ids.length;
        const next: GeneratedCodes | null = ahead > 0 ? draw(Math.min(GENERATE_CHUNK, ahead)) : null;
        made += await inserting;
        options.onProgress?.(made, spec.count);
        // PGlite runs every query synchronously: without a turn of the event loop here, timers (the
        // CLI's progress redraw, the relay, an HTTP server's other requests) wait for the whole batch.
        await new Promise<void>((resolve) => setImmediate(resolve));
        chunk = next ?? (made < spec.count ? draw(Math.min(GENERATE_CHUNK, spec.count - made)) : null);
      }
      await appendEvents(
        db,
        [
          {
            type: 'code.batch_generated',
            aggregateId: batchId,
            payload: {
              campaign_id: campaignId,
              batch_id: batchId,
              count: made,
              prefix,
              random_length: pattern.randomLength,
              actor,
            },
          },
        ],
        now,
      );
    };
    if (options.atomic) {
      await this.ctx.db.transaction().execute(async (trx) => {
        await createBatch(trx);
        await fill(trx);
      });
    } else {
      await this.ctx.db.transaction().execute(createBatch);
      await fill(this.ctx.db);
    }
    this.patterns.add(pattern);
    this.ctx.afterCommit();
    return { batchId, count: spec.count, pattern };
  }

  list(campaignId: string, page: { limit: number; after?: string | undefined }): Promise<CodeRecord[]> {
    return listCodes(this.ctx.db, campaignId, page);
  }

  /** How many codes a campaign has (the total an export's progress counts towards). */
  count(campaignId: string): Promise<number> {
    return countCodes(this.ctx.db, campaignId);
  }

  /**
   * Every code of a campaign as CSV lines (formats/code-csv.ts has the header), page by page in id
   * order: memory holds one page, however many codes there are.
   */
  async *exportCsv(
    campaignId: string,
    pageSize = EXPORT_PAGE,
  ): AsyncGenerator<{ text: string; count: number }> {
    let after: string | undefined;
    for (;;) {
      const page = await exportCodesPage(this.ctx.db, campaignId, { limit: pageSize, after });
      if (page.count === 0 || page.last === null) return;
      yield { text: page.text, count: page.count };
      if (page.count < pageSize) return;
      after = page.last;
    }
  }

  async revoke(text: string, actor: Actor, reason: string | null): Promise<CodeRecord> {
    const normalized = normalizeCode(text);
    if (normalized === null) throw new AppError('code_not_found');
    const now = this.ctx.clock.now();
    const code = await this.ctx.db.transaction().execute(async (trx) => {
      const revoked = await revokeCode(trx, normalized, now);
      if (!revoked) return null;
      await appendEvents(
        trx,
        [
          {
            type: 'code.revoked',
            aggregateId: revoked.id,
            payload: { campaign_id: revoked.campaignId, code_id: revoked.id, actor, reason },
          },
        ],
        now,
      );
      await insertAudit(
        trx,
        {
          actor,
          action: 'code.revoked',
          targetId: revoked.id,
          reason,
          details: { campaign_id: revoked.campaignId, ...shownText(revoked.kind, revoked.code) },
        },
        now,
      );
      return revoked;
    });
    if (code) {
      this.ctx.afterCommit();
      return code;
    }
    // Already revoked (a repeat) or unknown.
    const existing = await findCode(this.ctx.db, normalized);
    if (!existing) throw new AppError('code_not_found');
    return existing;
  }

  /** M5 per code: who redeemed it over the last `days` days (distinct customers, cards, devices, addresses). */
  async stats(text: string, days: number): Promise<{ code: CodeRecord; since: Date; stats: CodeStats }> {
    const normalized = normalizeCode(text);
    const code = normalized === null ? null : await findCode(this.ctx.db, normalized);
    if (!code) throw new AppError('code_not_found');
    const since = new Date(this.ctx.clock.now().getTime() - days * 86_400_000);
    return { code, since, stats: await codeStats(this.ctx.db, code, since) };
  }
}
