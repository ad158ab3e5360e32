/**
 * Every metric Promoguard exports, defined once: the registry is built from this list, and the
 * dashboards and alert rules under ops/ are tested against it. Names follow Prometheus conventions
 * (prefix `promoguard_`, base units, `_total` for counters). No label ever holds a customer id or a
 * code's text; `campaign_id` is bounded by METRICS_CAMPAIGN_LABEL_LIMIT (campaigns past it share
 * `campaign_id="other"`), `code_id` appears only in the bounded top-N gauges.
 *
 * `source`: `node` metrics are counted by each process (sum them in PromQL); `database` gauges are read
 * from the database on scrape (cached for a few seconds), so every node reports the same value.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDefinition {
  name: string;
  type: MetricType;
  help: string;
  labels: readonly string[];
  source: 'node' | 'database';
  /** The seed document's metric this one measures (M1–M10), when it is one. */
  seed?: string;
  buckets?: readonly number[];
}

/** Fine enough for a service whose validations take 1–5 ms, up to a second. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
] as const;

/** A webhook attempt: a receiver on the same network answers in milliseconds; WEBHOOKS_TIMEOUT_MS caps it. */
export const WEBHOOK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

/** From a redemption to its flag: seconds to a day (the target is minutes). */
export const DETECTION_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 600, 1800, 3600, 21600, 86400] as const;

/** Account age classes of M6 (hours since `context.account_created_at`). */
export const ACCOUNT_AGE_CLASSES = ['lt_1h', 'lt_24h', 'lt_7d', 'lt_30d', 'gte_30d', 'unknown'] as const;

export const METRICS = [
  // M1: redemption rate
  {
    name: 'promoguard_redemptions_total',
    type: 'counter',
    help: 'Redemption attempts by campaign and outcome (redeemed, replayed, refused with its reason, challenged, limited)',
    labels: ['campaign_id', 'outcome', 'reason'],
    source: 'node',
    seed: 'M1',
  },
  {
    name: 'promoguard_validations_total',
    type: 'counter',
    help: 'Validations by campaign and outcome (valid, invalid with its reason, limited)',
    labels: ['campaign_id', 'outcome', 'reason'],
    source: 'node',
  },
  {
    name: 'promoguard_discount_granted_minor_total',
    type: 'counter',
    help: 'Discount granted by redemptions made, in minor units of the currency',
    labels: ['campaign_id', 'currency'],
    source: 'node',
  },
  // M2: abusive redemption rate
  {
    name: 'promoguard_risk_decisions_total',
    type: 'counter',
    help: 'Risk decisions by operation (validation, redemption, conversion) and action (allow, review, challenge, block)',
    labels: ['operation', 'action'],
    source: 'node',
    seed: 'M2',
  },
  {
    name: 'promoguard_rule_hits_total',
    type: 'counter',
    help: 'Rules that fired, by rule, mode (enforce, shadow) and action',
    labels: ['rule_id', 'mode', 'action'],
    source: 'node',
    seed: 'M2',
  },
  {
    name: 'promoguard_labels_total',
    type: 'counter',
    help: 'Outcome labels given to decisions (abuse, legitimate) by where they came from (review, decision, outcome)',
    labels: ['label', 'source'],
    source: 'node',
    seed: 'M2',
  },
  // M3: validation latency
  {
    name: 'promoguard_validation_duration_seconds',
    type: 'histogram',
    help: 'Time to answer a validation, from the request to the decision',
    labels: [],
    source: 'node',
    seed: 'M3',
    buckets: LATENCY_BUCKETS,
  },
  {
    name: 'promoguard_redemption_duration_seconds',
    type: 'histogram',
    help: 'Time to answer a redemption, from the request to the commit',
    labels: [],
    source: 'node',
    seed: 'M3',
    buckets: LATENCY_BUCKETS,
  },
  // M4: refunds due to promo
  {
    name: 'promoguard_rollbacks_total',
    type: 'counter',
    help: 'Redemptions rolled back, by who rolled them back (merchant, review, remediation)',
    labels: ['campaign_id', 'source'],
    source: 'node',
    seed: 'M4',
  },
  {
    name: 'promoguard_rolled_back_discount_minor_total',
    type: 'counter',
    help: 'Discount returned by rollbacks, in minor units',
    labels: ['campaign_id', 'currency'],
    source: 'node',
    seed: 'M4',
  },
  {
    name: 'promoguard_review_rejected_discount_minor_total',
    type: 'counter',
    help: 'Discount of redemptions rejected on review, in minor units',
    labels: ['campaign_id', 'currency'],
    source: 'node',
    seed: 'M4',
  },
  // M5: unique payment instruments per code (bounded top N)
  {
    name: 'promoguard_code_payment_instruments',
    type: 'gauge',
    help: 'Distinct payment instruments that redeemed a code in the last 30 days, for the top N codes',
    labels: ['campaign_id', 'code_id'],
    source: 'database',
    seed: 'M5',
  },
  {
    name: 'promoguard_campaign_payment_instruments',
    type: 'gauge',
    help: 'Distinct payment instruments that redeemed in a campaign in the last 30 days, for the top N campaigns',
    labels: ['campaign_id'],
    source: 'database',
    seed: 'M5',
  },
  // M6: new accounts per promo
  {
    name: 'promoguard_redemptions_by_account_age_total',
    type: 'counter',
    help: 'Redemptions made, by campaign and the age class of the account (lt_1h … gte_30d, unknown)',
    labels: ['campaign_id', 'account_age'],
    source: 'node',
    seed: 'M6',
  },
  // M7: chargeback rate for promo orders
  {
    name: 'promoguard_redemption_outcomes_total',
    type: 'counter',
    help: 'Order outcomes recorded for redemptions (chargeback, refund, fulfilled, confirmed_abuse)',
    labels: ['campaign_id', 'outcome'],
    source: 'node',
    seed: 'M7',
  },
  // M8: fraud detection latency
  {
    name: 'promoguard_detection_latency_seconds',
    type: 'histogram',
    help: "Time from a redemption to its first flag, by what flagged it (review_hold, rule, label, alert: from the triggering event's commit to the alert's)",
    labels: ['source'],
    source: 'node',
    seed: 'M8',
    buckets: DETECTION_BUCKETS,
  },
  {
    name: 'promoguard_alerts_total',
    type: 'counter',
    help: 'Alerts raised by the streaming detectors, by kind (redemption_spike, distinct_spike, refusal_wave, rollback_cycle, order_splitting)',
    labels: ['kind'],
    source: 'node',
    seed: 'M8',
  },
  {
    name: 'promoguard_detection_leader',
    type: 'gauge',
    help: 'Whether this node runs the streaming detectors (1) or waits for their lease (0); one node of the cluster holds it',
    labels: [],
    source: 'node',
    seed: 'M8',
  },
  {
    name: 'promoguard_remediations_total',
    type: 'counter',
    help: 'Remediations by action and what happened to them: applied, dry_run (recorded only), lifted (by a person), expired',
    labels: ['action', 'how'],
    source: 'node',
  },
  {
    name: 'promoguard_remediations_active',
    type: 'gauge',
    help: 'Remediations in force (mode enforce) or recorded as a dry run, by action',
    labels: ['action', 'mode'],
    source: 'database',
  },
  // M9: manual review queue
  {
    name: 'promoguard_related_holds_total',
    type: 'counter',
    help: "Earlier redemptions held for review along with one a rule held (a rule's hold_with), by scope; failed: the extra hold could not be written",
    labels: ['hold_with', 'result'],
    source: 'node',
  },
  {
    name: 'promoguard_review_queue_pending',
    type: 'gauge',
    help: 'Redemptions held for review and not yet decided',
    labels: [],
    source: 'database',
    seed: 'M9',
  },
  {
    name: 'promoguard_review_queue_oldest_age_seconds',
    type: 'gauge',
    help: 'Age of the oldest redemption waiting for review (0 when none waits)',
    labels: [],
    source: 'database',
    seed: 'M9',
  },
  // M10: reconciliation mismatch
  {
    name: 'promoguard_reconciliation_mismatch_minor',
    type: 'gauge',
    help: 'Mismatched minor units found by the last reconciliation, per kind of check',
    labels: ['kind'],
    source: 'database',
    seed: 'M10',
  },
  {
    name: 'promoguard_reconciliation_mismatch_rows',
    type: 'gauge',
    help: 'Mismatched rows found by the last reconciliation, per kind of check',
    labels: ['kind'],
    source: 'database',
    seed: 'M10',
  },
  {
    name: 'promoguard_reconciliation_last_run_timestamp_seconds',
    type: 'gauge',
    help: 'When the last reconciliation finished (Unix seconds; 0 when none ran)',
    labels: [],
    source: 'database',
    seed: 'M10',
  },
  // Campaign state for dashboards and alert routing
  {
    name: 'promoguard_campaigns',
    type: 'gauge',
    help: 'Campaigns by status',
    labels: ['status'],
    source: 'database',
  },
  {
    name: 'promoguard_campaign_budget_minor',
    type: 'gauge',
    help: 'Budget of active and paused campaigns that have one, in minor units',
    labels: ['campaign_id', 'currency'],
    source: 'database',
  },
  {
    name: 'promoguard_campaign_spent_minor',
    type: 'gauge',
    help: 'Discount spent by active and paused campaigns (redemptions in force), in minor units',
    labels: ['campaign_id', 'currency'],
    source: 'database',
  },
  {
    name: 'promoguard_campaign_planned_peak',
    type: 'gauge',
    help: '1 while a campaign is inside a planned peak it declared (a flash sale): spike alerts are suppressed',
    labels: ['campaign_id'],
    source: 'database',
  },
  {
    name: 'promoguard_active_controls',
    type: 'gauge',
    help: 'Controls in force: paused campaigns, throttled campaigns, capped partners, active remediations',
    labels: ['kind'],
    source: 'database',
  },
  // The event outbox (F6: pipeline lag)
  {
    name: 'promoguard_outbox_backlog_events',
    type: 'gauge',
    help: 'Committed events not yet delivered',
    labels: [],
    source: 'database',
  },
  {
    name: 'promoguard_outbox_oldest_age_seconds',
    type: 'gauge',
    help: 'Age of the oldest undelivered event (0 when none waits)',
    labels: [],
    source: 'database',
  },
  {
    name: 'promoguard_outbox_published_total',
    type: 'counter',
    help: 'Events delivered by this node',
    labels: [],
    source: 'node',
  },
  {
    name: 'promoguard_outbox_delivery_failures_total',
    type: 'counter',
    help: 'Event deliveries that failed on this node (retried after the lease)',
    labels: [],
    source: 'node',
  },
  // Webhooks
  {
    name: 'promoguard_webhook_deliveries_total',
    type: 'counter',
    help: 'Webhook attempts sent by this node by outcome: succeeded (2xx), retrying (scheduled again), failed (410 or the schedule is spent)',
    labels: ['outcome'],
    source: 'node',
  },
  {
    name: 'promoguard_webhook_delivery_duration_seconds',
    type: 'histogram',
    help: "A webhook attempt from connecting to the receiver's answer (or the timeout), by outcome",
    labels: ['outcome'],
    source: 'node',
    buckets: WEBHOOK_BUCKETS,
  },
  // RED per route
  {
    name: 'promoguard_http_requests_total',
    type: 'counter',
    help: 'HTTP requests by method, route template and status code',
    labels: ['method', 'route', 'status'],
    source: 'node',
  },
  {
    name: 'promoguard_http_request_duration_seconds',
    type: 'histogram',
    help: 'HTTP request duration by method and route template',
    labels: ['method', 'route'],
    source: 'node',
    buckets: LATENCY_BUCKETS,
  },
  // Health of what the service depends on
  {
    name: 'promoguard_db_pool_connections',
    type: 'gauge',
    help: 'Database connections of this node by state (in_use, idle)',
    labels: ['state'],
    source: 'node',
  },
  {
    name: 'promoguard_db_pool_waiting_requests',
    type: 'gauge',
    help: 'Queries of this node waiting for a database connection',
    labels: [],
    source: 'node',
  },
  {
    name: 'promoguard_dependency_up',
    type: 'gauge',
    help: '1 when a dependency (database, redis, nats) answers, 0 while it is down',
    labels: ['dependency'],
    source: 'node',
  },
  {
    name: 'promoguard_attempt_guard_refusals_total',
    type: 'counter',
    help: 'Attempts refused by the attempt limits, by key kind (customer, device, ip) and reason (locked, rate_limited)',
    labels: ['key_kind', 'reason'],
    source: 'node',
  },
  {
    name: 'promoguard_attempt_guard_locks_total',
    type: 'counter',
    help: 'Lockouts started, by key kind (customer, device, ip)',
    labels: ['key_kind'],
    source: 'node',
  },
] as const satisfies readonly MetricDefinition[];

export type MetricName = (typeof METRICS)[number]['name'];

/** Node.js process metrics (prom-client's defaults), also exported: event-loop lag, heap, CPU. */
export const DEFAULT_METRIC_PREFIXES = ['process_', 'nodejs_'] as const;
