-- The risk engine: analysts' rules (CEL expressions), the decision taken on each redemption attempt
-- with what it saw (so a rule can be backtested over it), labels (training data and rule precision),
-- and the review state of a redemption held for review. Also the change stamps of data sets that nodes
-- keep in memory.

CREATE TABLE risk_rules (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  expression text NOT NULL,
  action text NOT NULL CHECK (action IN ('allow', 'review', 'challenge', 'block')),
  reason text NOT NULL,
  mode text NOT NULL CHECK (mode IN ('enforce', 'shadow')),
  campaign_id text REFERENCES campaigns (id),
  expires_at timestamptz,
  enabled boolean NOT NULL DEFAULT true,
  pack text,
  version integer NOT NULL DEFAULT 1,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz
);

-- One row per redemption attempt that reached the rules and either made a redemption (written in the
-- same statement as the redemption) or was stopped by them (block, challenge). The decision holds the
-- rules that fired and every input the rules could read.
CREATE TABLE risk_decisions (
  id text PRIMARY KEY,
  created_at timestamptz NOT NULL,
  operation text NOT NULL,
  campaign_id text NOT NULL,
  code_id text NOT NULL,
  customer_id text NOT NULL,
  redemption_id text UNIQUE,
  action text NOT NULL CHECK (action IN ('allow', 'review', 'challenge', 'block')),
  outcome text NOT NULL CHECK (outcome IN ('redeemed', 'blocked', 'challenged')),
  decision jsonb NOT NULL
);

CREATE INDEX risk_decisions_created_idx ON risk_decisions (created_at, id);

CREATE TABLE risk_labels (
  decision_id text PRIMARY KEY REFERENCES risk_decisions (id),
  label text NOT NULL CHECK (label IN ('abuse', 'legitimate')),
  note text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL
);

ALTER TABLE redemptions ADD COLUMN review_status text
CHECK (review_status IN ('pending', 'approved', 'rejected'));

ALTER TABLE redemptions ADD COLUMN reviewed_at timestamptz;

ALTER TABLE redemptions ADD COLUMN reviewed_by text;

ALTER TABLE redemptions ADD COLUMN decision_id text;

CREATE INDEX redemptions_pending_review_idx ON redemptions (created_at, id)
WHERE review_status = 'pending';

-- A counter per cached data set (block/allow lists, risk rules): every change bumps it in the same transaction,
-- so nodes holding a copy in memory see a change by reading one row.
CREATE TABLE change_stamps (
  name text PRIMARY KEY,
  version bigint NOT NULL
);
