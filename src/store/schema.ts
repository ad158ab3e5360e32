/**
 * Table types for Kysely, one per table of the migrations: column names are the SQL names, closed
 * sets are literal unions (the CHECK constraints' lists), and the store maps rows to domain objects.
 */
import type { ColumnType, Generated, Selectable } from 'kysely';
import type { CampaignStatus, CodeKind, CodeStatus } from '../domain/campaign.js';
import type { HoldWith, RiskAction, RuleMode } from '../domain/risk.js';

/** Defaulted by the database on insert; never changed afterwards. */
type CreatedAt = ColumnType<Date, Date | undefined, never>;
/** jsonb: read as the parsed value, written as JSON text. */
type Json<T> = ColumnType<T, string, string>;

export type DiscountType = 'fixed_amount' | 'percentage' | 'free_shipping';
export type RedemptionStatus = 'redeemed' | 'rolled_back';
export type ReviewStatus = 'pending' | 'approved' | 'rejected';
export type LedgerAccount = 'promo_expense' | 'campaign_budget';
export type LedgerEntryType = 'redemption' | 'reversal';
export type MovementKind = 'credit' | 'debit' | 'conversion' | 'expiry_refund';
export type ListName = 'block' | 'allow';
export type RuleLabel = 'abuse' | 'legitimate';
export type DecisionOutcome = 'redeemed' | 'blocked' | 'challenged';

export interface ApiKeysTable {
  id: string;
  name: string;
  key_hash: string;
  key_hint: string;
  scopes: string[];
  created_at: CreatedAt;
  revoked_at: Date | null;
}

/** A planned peak as stored (see PlannedPeak in the domain). */
export interface PlannedPeakJson {
  starts_at: string;
  ends_at: string;
  expected_per_minute: number;
}

export interface CampaignsTable {
  id: string;
  name: string;
  status: CampaignStatus;
  currency: string;
  discount_type: DiscountType;
  amount_minor: number | null;
  percent_bp: number | null;
  max_discount_minor: number | null;
  starts_at: Date;
  ends_at: Date | null;
  redemption_cap: number | null;
  redemptions_used: Generated<number>;
  budget_minor: number | null;
  spent_minor: Generated<number>;
  per_customer_cap: number | null;
  per_person_cap: number | null;
  throttle_per_minute: number | null;
  min_order_minor: number | null;
  eligibility: Json<unknown>;
  metadata: ColumnType<Record<string, string>, string | undefined, string>;
  planned_peaks: ColumnType<PlannedPeakJson[], string | undefined, string>;
  version: Generated<number>;
  created_at: CreatedAt;
  updated_at: Date;
}

export interface CodeBatchesTable {
  id: string;
  campaign_id: string;
  prefix: string;
  random_length: number;
  requested: number;
  created_at: CreatedAt;
}

export interface CodesTable {
  id: string;
  campaign_id: string;
  batch_id: string | null;
  code: string;
  normalized: string;
  kind: CodeKind;
  max_uses: number | null;
  uses: Generated<number>;
  customer_id: string | null;
  amount_minor: number | null;
  status: ColumnType<CodeStatus, CodeStatus | undefined, CodeStatus>;
  created_at: CreatedAt;
  revoked_at: Date | null;
  expires_at: Date | null;
  partner: string | null;
}

export interface CustomerUsageTable {
  campaign_id: string;
  customer_id: string;
  uses: number;
}

export interface RedemptionsTable {
  id: string;
  idempotency_key: string;
  request_fingerprint: string;
  campaign_id: string;
  code_id: string;
  customer_id: string;
  order_id: string | null;
  currency: string;
  subtotal_minor: number;
  discount_minor: number;
  status: RedemptionStatus;
  created_at: CreatedAt;
  rolled_back_at: Date | null;
  rollback_reason: string | null;
  person_id: string | null;
  context: Json<unknown> | null;
  review_status: ReviewStatus | null;
  reviewed_at: Date | null;
  reviewed_by: string | null;
  decision_id: string | null;
  review_assigned_to: string | null;
  review_assigned_at: Date | null;
  review_locked_until: Date | null;
}

export interface LedgerEntriesTable {
  id: Generated<number>;
  redemption_id: string;
  campaign_id: string;
  account: LedgerAccount;
  amount_minor: number;
  currency: string;
  entry_type: LedgerEntryType;
  created_at: CreatedAt;
}

export interface OutboxTable {
  seq: Generated<number>;
  id: string;
  type: string;
  aggregate_id: string;
  payload: Json<unknown>;
  created_at: CreatedAt;
  claimed_until: Date | null;
  published_at: Date | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  actor: string;
  action: string;
  target_id: string;
  reason: string | null;
  details: Json<unknown>;
  created_at: CreatedAt;
}

export interface PointsProgramsTable {
  id: string;
  name: string;
  campaign_id: string;
  currency: string;
  minor_per_point: number;
  min_points: number;
  step_points: number;
  max_points_per_conversion: number;
  daily_limit_points: number;
  validity_months: number;
  multiplier_bp: number;
  tier_multipliers_bp: ColumnType<Record<string, number>, string | undefined, string>;
  code_format: string;
  refund_on_expiry: Generated<boolean>;
  created_at: CreatedAt;
  updated_at: Date;
}

export interface PointsAccountsTable {
  customer_id: string;
  balance: Generated<number>;
  created_at: CreatedAt;
  updated_at: Date;
}

export interface ConversionsTable {
  id: string;
  idempotency_key: string;
  request_fingerprint: string;
  customer_id: string;
  program_id: string;
  points: number;
  amount_minor: number;
  currency: string;
  code_id: string;
  /** `YYYY-MM-DD` (dates are read as text on both backends). */
  utc_day: string;
  created_at: CreatedAt;
  refunded_at: Date | null;
}

export interface PointsDailyTable {
  customer_id: string;
  utc_day: string;
  points: number;
}

export interface PointsMovementsTable {
  id: Generated<number>;
  customer_id: string;
  kind: MovementKind;
  points: number;
  balance_after: number;
  reason: string | null;
  idempotency_key: string | null;
  request_fingerprint: string | null;
  conversion_id: string | null;
  created_at: CreatedAt;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export type WebhookDeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  body: string;
  status: WebhookDeliveryStatus;
  attempts: Generated<number>;
  schedule_step: Generated<number>;
  next_attempt_at: Date | null;
  leased_until: Date | null;
  lease_token: string | null;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
}

export interface WebhookAttemptsTable {
  id: Generated<number>;
  delivery_id: string;
  attempted_at: Date;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export type AlertStatus = 'open' | 'acknowledged' | 'resolved';

export interface AlertsTable {
  id: string;
  kind: string;
  detector_key: string;
  episode_start: Date;
  scope_type: string;
  scope_id: string;
  campaign_id: string | null;
  partner: string | null;
  batch_id: string | null;
  severity: string;
  status: ColumnType<AlertStatus, AlertStatus | undefined, AlertStatus>;
  observed: number;
  expected: number;
  interval_seconds: number;
  details: Json<Record<string, unknown>>;
  triggered_by_event_id: string | null;
  triggered_at: Date;
  raised_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  resolved_at: Date | null;
  resolved_by: string | null;
}

export interface DetectorSnapshotsTable {
  name: string;
  snapshot: string;
  saved_at: Date;
}

export interface NodeLeasesTable {
  name: string;
  holder: string;
  acquired_at: Date;
  expires_at: Date;
}

export interface ServerSecretsTable {
  name: string;
  value: string;
  created_at: CreatedAt;
}

export interface PartnerCapsTable {
  campaign_id: string;
  partner: string;
  cap: number | null;
  used: Generated<number>;
}

export interface IdentityNodesTable {
  key: string;
  person_id: string;
  first_seen: CreatedAt;
  account_created_at: Date | null;
  unlinked: Generated<boolean>;
}

export interface IdentityEdgesTable {
  customer_id: string;
  identifier_key: string;
  first_seen: Date;
  last_seen: Date;
}

export interface PersonUsageTable {
  campaign_id: string;
  person_id: string;
  uses: number;
}

export interface CampaignMinuteTable {
  campaign_id: string;
  minute: Date;
  uses: number;
}

export interface ListEntriesTable {
  id: Generated<number>;
  list: ListName;
  identifier_type: string;
  identifier_hash: string;
  /** An IP range (`cidr`), for entries that name a network rather than one address. */
  network: string | null;
  reason: string;
  created_by: string;
  created_at: CreatedAt;
  expires_at: Date | null;
  removed_at: Date | null;
  removed_by: string | null;
}

export interface RiskRulesTable {
  id: string;
  name: string;
  description: Generated<string>;
  expression: string;
  action: RiskAction;
  reason: string;
  mode: RuleMode;
  hold_with: HoldWith | null;
  campaign_id: string | null;
  expires_at: Date | null;
  enabled: Generated<boolean>;
  pack: string | null;
  version: Generated<number>;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export interface RiskDecisionsTable {
  id: string;
  created_at: Date;
  operation: string;
  campaign_id: string;
  code_id: string;
  customer_id: string;
  redemption_id: string | null;
  action: RiskAction;
  outcome: DecisionOutcome;
  decision: Json<Record<string, unknown>>;
}

export interface CustomerSightingsTable {
  customer_id: string;
  kind: 'device' | 'prefix' | 'payment' | 'hour';
  hash: string;
  first_at: Date;
  last_at: Date;
  verified_at: Date | null;
  uses: number;
}

export interface LoyaltyDecisionsTable {
  id: string;
  created_at: Date;
  operation: 'conversion' | 'wallet_read';
  channel: 'checkout' | 'storefront';
  customer_id: string;
  program_id: string | null;
  idempotency_key: string | null;
  conversion_id: string | null;
  action: RiskAction;
  outcome: 'converted' | 'read' | 'challenged' | 'blocked' | 'refused';
  context: Json<Record<string, unknown>> | null;
  decision: Json<Record<string, unknown>>;
}

export interface RiskLabelsTable {
  decision_id: string;
  label: RuleLabel;
  note: string | null;
  created_by: string;
  created_at: Date;
}

export type ApprovalKind = 'campaign.create' | 'campaign.update';
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

export interface ApprovalsTable {
  id: string;
  kind: ApprovalKind;
  target_id: string;
  target_version: number;
  target_status: CampaignStatus;
  change: Json<Record<string, unknown>>;
  rules: string[];
  reason: string | null;
  requested_by: string;
  status: ApprovalStatus;
  decided_by: string | null;
  decided_at: Date | null;
  note: string | null;
  created_at: Date;
  expires_at: Date;
}

export type ScoreModelStatus = 'shadow' | 'enforcing' | 'retired';

export interface ScoreModelsTable {
  version: number;
  format: number;
  status: ScoreModelStatus;
  model: Json<unknown>;
  evaluation: Json<unknown>;
  trained_on: Json<unknown>;
  created_by: string;
  created_at: Date;
  promoted_by: string | null;
  promoted_at: Date | null;
}

export interface ChangeStampsTable {
  name: string;
  version: number;
}

export type OutcomeKind = 'chargeback' | 'refund' | 'fulfilled' | 'confirmed_abuse';

export interface RedemptionOutcomesTable {
  id: Generated<number>;
  redemption_id: string;
  campaign_id: string;
  outcome: OutcomeKind;
  amount_minor: number | null;
  note: string | null;
  recorded_by: string;
  occurred_at: Date;
  recorded_at: Date;
}

export type ConsoleRole = 'marketing' | 'fraud' | 'on_call' | 'finance' | 'admin';

export interface ConsoleUsersTable {
  id: string;
  email: string;
  role: ConsoleRole;
  password_hash: string;
  failed_sign_ins: Generated<number>;
  locked_until: Date | null;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface ConsoleSessionsTable {
  id_hash: string;
  user_id: string;
  created_at: Date;
  last_seen_at: Date;
  revoked_at: Date | null;
}

export interface RemediationPoliciesTable {
  id: string;
  name: string;
  scope_type: 'global' | 'campaign' | 'partner';
  campaign_id: string | null;
  partner: string | null;
  alert_kind: string;
  alert_scopes: string[] | null;
  min_severity: 'ticket' | 'page' | null;
  action: string;
  params: Json<Record<string, unknown>>;
  mode: 'enforce' | 'dry_run';
  duration_seconds: number;
  enabled: Generated<boolean>;
  pack: string | null;
  version: Generated<number>;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export interface RemediationsTable {
  id: string;
  policy_id: string;
  alert_id: string;
  alert_kind: string;
  action: string;
  target_type: 'campaign' | 'code' | 'partner' | 'batch';
  target_key: string;
  campaign_id: string | null;
  partner: string | null;
  batch_id: string | null;
  code_id: string | null;
  params: Json<Record<string, unknown>>;
  dry_run: boolean;
  status: 'active' | 'lifted' | 'expired';
  change: Json<Record<string, unknown>>;
  applied_at: Date;
  expires_at: Date;
  ended_at: Date | null;
  ended_by: string | null;
  end_reason: string | null;
  undo: Json<Record<string, unknown> | null> | null;
}

export interface RemediationRevokedCodesTable {
  remediation_id: string;
  code_id: string;
}

export interface Database {
  console_users: ConsoleUsersTable;
  console_sessions: ConsoleSessionsTable;
  api_keys: ApiKeysTable;
  campaigns: CampaignsTable;
  code_batches: CodeBatchesTable;
  codes: CodesTable;
  customer_usage: CustomerUsageTable;
  redemptions: RedemptionsTable;
  ledger_entries: LedgerEntriesTable;
  outbox: OutboxTable;
  audit_log: AuditLogTable;
  points_programs: PointsProgramsTable;
  points_accounts: PointsAccountsTable;
  conversions: ConversionsTable;
  points_daily: PointsDailyTable;
  points_movements: PointsMovementsTable;
  server_secrets: ServerSecretsTable;
  partner_caps: PartnerCapsTable;
  identity_nodes: IdentityNodesTable;
  identity_edges: IdentityEdgesTable;
  person_usage: PersonUsageTable;
  campaign_minute: CampaignMinuteTable;
  list_entries: ListEntriesTable;
  risk_rules: RiskRulesTable;
  risk_decisions: RiskDecisionsTable;
  risk_labels: RiskLabelsTable;
  customer_sightings: CustomerSightingsTable;
  loyalty_decisions: LoyaltyDecisionsTable;
  change_stamps: ChangeStampsTable;
  score_models: ScoreModelsTable;
  redemption_outcomes: RedemptionOutcomesTable;
  approvals: ApprovalsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  remediation_policies: RemediationPoliciesTable;
  remediations: RemediationsTable;
  remediation_revoked_codes: RemediationRevokedCodesTable;
  alerts: AlertsTable;
  detector_snapshots: DetectorSnapshotsTable;
  node_leases: NodeLeasesTable;
}

/**
 * A row as a database function returns it inside jsonb (`to_jsonb(row)`): the same columns, with
 * timestamps as ISO text. The row mappers accept both forms.
 */
export type JsonRow<T> = {
  [K in keyof Selectable<T>]: Selectable<T>[K] extends Date
    ? string | Date
    : Selectable<T>[K] extends Date | null
      ? string | Date | null
      : Selectable<T>[K];
};
