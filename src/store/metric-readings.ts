/**
 * What the database-derived gauges of src/metrics/catalogue.ts read, in one round of queries per
 * scrape (cached by the registry): the review queue (M9), the last reconciliation (M10), the outbox
 * backlog, campaigns by status, budgets and spend, controls in force, and the top codes and campaigns
 * by distinct payment instruments (M5). Every query is bounded: a gauge never grows with the data.
 */
import { type Kysely, sql } from 'kysely';
import { lastFinishedReconciliation } from './reconciliation.js';
import type { Database } from './schema.js';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface MetricReadings {
  promoguard_review_queue_pending: Sample[];
  promoguard_review_queue_oldest_age_seconds: Sample[];
  promoguard_reconciliation_mismatch_minor: Sample[];
  promoguard_reconciliation_mismatch_rows: Sample[];
  promoguard_reconciliation_last_run_timestamp_seconds: Sample[];
  promoguard_outbox_backlog_events: Sample[];
  promoguard_outbox_oldest_age_seconds: Sample[];
  promoguard_campaigns: Sample[];
  promoguard_campaign_budget_minor: Sample[];
  promoguard_campaign_spent_minor: Sample[];
  promoguard_active_controls: Sample[];
  promoguard_campaign_planned_peak: Sample[];
  promoguard_code_payment_instruments: Sample[];
  promoguard_campaign_payment_instruments: Sample[];
  promoguard_remediations_active: Sample[];
}

export interface ReadingLimits {
  /** Campaigns whose budget and spend get series of their own (the largest spenders first). */
  campaigns: number;
  /** Codes and campaigns of the M5 top lists; 0 skips those two queries. */
  topN: number;
  now: Date;
}

const one = (value: number, labels: Record<string, string> = {}): Sample[] => [{ labels, value }];
const seconds = (from: Date | null, now: Date) =>
  from === null ? 0 : Math.max(0, (now.getTime() - from.getTime()) / 1000);

export async function readMetrics(db: Kysely<Database>, limits: ReadingLimits): Promise<MetricReadings> {
  const { now } = limits;
  const review = await db
    .selectFrom('redemptions')
    .select((eb) => [eb.fn.countAll<number>().as('pending'), eb.fn.min('created_at').as('oldest')])
    .where('review_status', '=', 'pending')
    .executeTakeFirstOrThrow();
  // The partial index on unpublished events keeps this cheap however long the outbox grows.
  const outbox = await db
    .selectFrom('outbox')
    .select((eb) => [eb.fn.countAll<number>().as('backlog'), eb.fn.min('created_at').as('oldest')])
    .where('published_at', 'is', null)
    .executeTakeFirstOrThrow();
  const statuses = await db
    .selectFrom('campaigns')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  const live = await db
    .selectFrom('campaigns')
    .select(['id', 'currency', 'budget_minor', 'spent_minor'])
    .where('status', 'in', ['active', 'paused'])
    .orderBy('spent_minor', 'desc')
    .orderBy('id')
    .limit(limits.campaigns)
    .execute();
  // 1 while a live campaign is inside a peak it declared; the spike alert is silent for it meanwhile.
  const peaks = await sql<{ id: string }>`
    SELECT c.id FROM campaigns c
     WHERE c.status IN ('active', 'paused') AND EXISTS (
       SELECT 1 FROM jsonb_array_elements(c.planned_peaks) p
        WHERE (p->>'starts_at')::timestamptz <= ${now} AND ${now} < (p->>'ends_at')::timestamptz)
     ORDER BY c.id LIMIT ${limits.campaigns}`.execute(db);
  const controls = await sql<{ kind: string; n: number }>`
    SELECT 'paused_campaigns' AS kind, count(*) AS n FROM campaigns WHERE status = 'paused'
    UNION ALL SELECT 'throttled_campaigns', count(*) FROM campaigns
     WHERE throttle_per_minute IS NOT NULL AND status IN ('active', 'paused')
    UNION ALL SELECT 'capped_partners', count(*) FROM partner_caps WHERE cap IS NOT NULL`.execute(db);
  // M5 over the last 30 days of redemptions in force that carried a payment fingerprint (kept hashed).
  const since = new Date(now.getTime() - 30 * 24 * 3_600_000);
  const top = <T>(query: () => Promise<{ rows: T[] }>) =>
    limits.topN > 0 ? query() : Promise.resolve({ rows: [] as T[] });
  const codes = await top(() =>
    sql<{ campaign_id: string; code_id: string; n: number }>`
    SELECT campaign_id, code_id, count(DISTINCT context->>'payment_fingerprint') AS n
      FROM redemptions
     WHERE created_at >= ${since} AND status = 'redeemed' AND context ? 'payment_fingerprint'
     GROUP BY campaign_id, code_id ORDER BY n DESC, code_id LIMIT ${limits.topN}`.execute(db),
  );
  const campaigns = await top(() =>
    sql<{ campaign_id: string; n: number }>`
    SELECT campaign_id, count(DISTINCT context->>'payment_fingerprint') AS n
      FROM redemptions
     WHERE created_at >= ${since} AND status = 'redeemed' AND context ? 'payment_fingerprint'
     GROUP BY campaign_id ORDER BY n DESC, campaign_id LIMIT ${limits.topN}`.execute(db),
  );
  const remediations = await sql<{ action: string; mode: string; n: number }>`
    SELECT action, CASE WHEN dry_run THEN 'dry_run' ELSE 'enforce' END AS mode, count(*) AS n
      FROM remediations WHERE status = 'active' GROUP BY 1, 2`.execute(db);
  const reconciliation = await lastFinishedReconciliation(db);
  const kinds = Object.entries(reconciliation?.kinds ?? {});
  return {
    promoguard_review_queue_pending: one(Number(review.pending)),
    promoguard_review_queue_oldest_age_seconds: one(seconds(review.oldest ?? null, now)),
    promoguard_reconciliation_mismatch_minor: kinds.map(([kind, k]) => ({
      labels: { kind },
      value: Object.values(k.minorUnitsByCurrency).reduce((sum, v) => sum + Math.abs(v), 0),
    })),
    promoguard_reconciliation_mismatch_rows: kinds.map(([kind, k]) => ({ labels: { kind }, value: k.rows })),
    promoguard_reconciliation_last_run_timestamp_seconds: one(
      reconciliation ? reconciliation.finishedAt.getTime() / 1000 : 0,
    ),
    promoguard_outbox_backlog_events: one(Number(outbox.backlog)),
    promoguard_outbox_oldest_age_seconds: one(seconds(outbox.oldest ?? null, now)),
    promoguard_campaigns: statuses.map((s) => ({ labels: { status: s.status }, value: Number(s.n) })),
    promoguard_campaign_budget_minor: live
      .filter((c) => c.budget_minor !== null)
      .map((c) => ({ labels: { campaign_id: c.id, currency: c.currency }, value: Number(c.budget_minor) })),
    promoguard_campaign_spent_minor: live.map((c) => ({
      labels: { campaign_id: c.id, currency: c.currency },
      value: Number(c.spent_minor),
    })),
    promoguard_campaign_planned_peak: peaks.rows.map((r) => ({ labels: { campaign_id: r.id }, value: 1 })),
    promoguard_active_controls: controls.rows.map((c) => ({ labels: { kind: c.kind }, value: Number(c.n) })),
    promoguard_code_payment_instruments: codes.rows.map((r) => ({
      labels: { campaign_id: r.campaign_id, code_id: r.code_id },
      value: Number(r.n),
    })),
    promoguard_campaign_payment_instruments: campaigns.rows.map((r) => ({
      labels: { campaign_id: r.campaign_id },
      value: Number(r.n),
    })),
    promoguard_remediations_active: remediations.rows.map((r) => ({
      labels: { action: r.action, mode: r.mode },
      value: Number(r.n),
    })),
  };
}
