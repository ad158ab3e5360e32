--  Loyalty points: accounts, their append-only movements, conversion programs and conversions. 

-- A coupon made from points is valid for a limited time; other codes follow their campaign's window.
ALTER TABLE codes ADD COLUMN expires_at timestamptz;

CREATE INDEX codes_customer_idx ON codes (customer_id, id DESC) WHERE customer_id IS NOT NULL;

CREATE TABLE points_programs (
  id text PRIMARY KEY,
  name text NOT NULL,
  campaign_id text NOT NULL UNIQUE REFERENCES campaigns (id),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  minor_per_point integer NOT NULL CHECK (minor_per_point >= 1),
  min_points integer NOT NULL CHECK (min_points >= 1),
  step_points integer NOT NULL CHECK (step_points >= 1),
  max_points_per_conversion integer NOT NULL CHECK (max_points_per_conversion >= min_points),
  daily_limit_points integer NOT NULL CHECK (daily_limit_points >= 1),
  validity_months integer NOT NULL CHECK (validity_months BETWEEN 1 AND 120),
  multiplier_bp integer NOT NULL CHECK (multiplier_bp BETWEEN 1 AND 1000000),
  tier_multipliers_bp jsonb NOT NULL DEFAULT '{}',
  code_format text NOT NULL,
  refund_on_expiry boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE points_accounts (
  customer_id text PRIMARY KEY,
  balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conversions (
  id text PRIMARY KEY,
  idempotency_key text NOT NULL,
  request_fingerprint text NOT NULL,
  customer_id text NOT NULL,
  program_id text NOT NULL REFERENCES points_programs (id),
  points bigint NOT NULL CHECK (points > 0),
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  currency text NOT NULL,
  code_id text NOT NULL UNIQUE REFERENCES codes (id),
  utc_day date NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  refunded_at timestamptz
);

CREATE INDEX conversions_customer_idx ON conversions (customer_id, id DESC);

-- Keys are the customer's: a storefront choosing its own keys cannot collide with another customer's.
CREATE UNIQUE INDEX conversions_key_idx ON conversions (customer_id, idempotency_key);

CREATE TABLE points_daily (
  customer_id text NOT NULL,
  utc_day date NOT NULL,
  points bigint NOT NULL CHECK (points >= 0),
  PRIMARY KEY (customer_id, utc_day)
);

CREATE TABLE points_movements (
  id bigserial PRIMARY KEY,
  customer_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('credit', 'debit', 'conversion', 'expiry_refund')),
  points bigint NOT NULL CHECK (points <> 0),
  balance_after bigint NOT NULL CHECK (balance_after >= 0),
  reason text,
  idempotency_key text,
  request_fingerprint text,
  conversion_id text REFERENCES conversions (id),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX points_movements_customer_idx ON points_movements (customer_id, id DESC);

CREATE UNIQUE INDEX points_movements_key_idx ON points_movements (customer_id, idempotency_key);

CREATE TABLE server_secrets (
  name text PRIMARY KEY,
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
