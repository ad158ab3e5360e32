/** Table types for Kysely. Column names are the SQL names; the store maps rows to domain objects. */
import type { ColumnType, Generated } from 'kysely';

type CreatedAt = ColumnType<Date, Date | undefined, never>;
type Json<T> = ColumnType<T, string, string>;

export interface ApiKeysTable {
  id: string;
  name: string;
  key_hash: string;
  key_hint: string;
  scopes: string[];
  created_at: CreatedAt;
  revoked_at: Date | null;
}

export interface CampaignsTable {
  id: string;
  name: string;
  status: string;
  currency: string;
  discount_type: string;
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
  metadata: Json<Record<string, string>>;
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
  kind: string;
  max_uses: number | null;
  uses: Generated<number>;
  customer_id: string | null;
  amount_minor: number | null;
  status: Generated<string>;
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
  status: string;
  created_at: CreatedAt;
  rolled_back_at: Date | null;
  rollback_reason: string | null;
  person_id: string | null;
  context: Json<unknown> | null;
}

export interface LedgerEntriesTable {
  id: Generated<number>;
  redemption_id: string;
  campaign_id: string;
  account: string;
  amount_minor: number;
  currency: string;
  entry_type: string;
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

export interface Database {
  api_keys: ApiKeysTable;
  campaigns: CampaignsTable;
  code_batches: CodeBatchesTable;
  codes: CodesTable;
  customer_usage: CustomerUsageTable;
  redemptions: RedemptionsTable;
  ledger_entries: LedgerEntriesTable;
  outbox: OutboxTable;
  audit_log: AuditLogTable;
}
