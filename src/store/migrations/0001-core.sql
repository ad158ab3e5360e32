-- The core tables. Every cap is a counter column changed only by one conditional statement (see the
-- redeem and rollback functions in sql/functions/).

CREATE TABLE api_keys (
  id text PRIMARY KEY,
  name text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  key_hint text NOT NULL,
  scopes text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE TABLE campaigns (
  id text PRIMARY KEY,
  name text NOT NULL,
  status text NOT NULL CHECK (status IN ('draft', 'active', 'paused', 'ended')),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  discount_type text NOT NULL CHECK (discount_type IN ('fixed_amount', 'percentage', 'free_shipping')),
  amount_minor bigint CHECK (amount_minor >= 0),
  percent_bp integer CHECK (percent_bp BETWEEN 1 AND 10000),
  max_discount_minor bigint CHECK (max_discount_minor >= 0),
  starts_at timestamptz NOT NULL,
  ends_at timestamptz CHECK (ends_at > starts_at),
  redemption_cap integer CHECK (redemption_cap >= 0),
  redemptions_used integer NOT NULL DEFAULT 0 CHECK (redemptions_used >= 0),
  budget_minor bigint CHECK (budget_minor >= 0),
  spent_minor bigint NOT NULL DEFAULT 0 CHECK (spent_minor >= 0),
  per_customer_cap integer CHECK (per_customer_cap >= 1),
  min_order_minor bigint CHECK (min_order_minor >= 0),
  eligibility jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX campaigns_created_idx ON campaigns (id DESC);

CREATE TABLE code_batches (
  id text PRIMARY KEY,
  campaign_id text NOT NULL REFERENCES campaigns (id),
  prefix text NOT NULL,
  random_length integer NOT NULL,
  requested integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE codes (
  id text PRIMARY KEY,
  campaign_id text NOT NULL REFERENCES campaigns (id),
  batch_id text REFERENCES code_batches (id),
  code text NOT NULL,
  normalized text NOT NULL UNIQUE,
  kind text NOT NULL CHECK (kind IN ('public', 'unique')),
  max_uses integer CHECK (max_uses >= 1),
  uses integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
  customer_id text,
  amount_minor bigint CHECK (amount_minor >= 0),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE INDEX codes_campaign_idx ON codes (campaign_id, id);

CREATE TABLE customer_usage (
  campaign_id text NOT NULL REFERENCES campaigns (id),
  customer_id text NOT NULL,
  uses integer NOT NULL CHECK (uses >= 0),
  PRIMARY KEY (campaign_id, customer_id)
);

CREATE TABLE redemptions (
  id text PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  request_fingerprint text NOT NULL,
  campaign_id text NOT NULL REFERENCES campaigns (id),
  code_id text NOT NULL REFERENCES codes (id),
  customer_id text NOT NULL,
  order_id text,
  currency text NOT NULL,
  subtotal_minor bigint NOT NULL,
  discount_minor bigint NOT NULL CHECK (discount_minor >= 0),
  status text NOT NULL CHECK (status IN ('redeemed', 'rolled_back')),
  created_at timestamptz NOT NULL DEFAULT now(),
  rolled_back_at timestamptz,
  rollback_reason text
);

CREATE INDEX redemptions_campaign_idx ON redemptions (campaign_id, id DESC);

CREATE INDEX redemptions_customer_idx ON redemptions (customer_id, id DESC);

CREATE TABLE ledger_entries (
  id bigserial PRIMARY KEY,
  redemption_id text NOT NULL REFERENCES redemptions (id),
  campaign_id text NOT NULL,
  account text NOT NULL CHECK (account IN ('promo_expense', 'campaign_budget')),
  amount_minor bigint NOT NULL,
  currency text NOT NULL,
  entry_type text NOT NULL CHECK (entry_type IN ('redemption', 'reversal')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ledger_entries_campaign_idx ON ledger_entries (campaign_id, account);

CREATE TABLE outbox (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  type text NOT NULL,
  aggregate_id text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  claimed_until timestamptz,
  published_at timestamptz
);

CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  actor text NOT NULL,
  action text NOT NULL,
  target_id text NOT NULL,
  reason text,
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_target_idx ON audit_log (target_id, id DESC);
