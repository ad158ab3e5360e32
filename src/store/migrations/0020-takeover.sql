-- Account takeover: what each customer's own history says, and the decisions on loyalty operations.

-- The devices, client networks (IPv4 /24, IPv6 /48) and payment instruments a customer used, as keyed
-- hashes, and the UTC hours it acts in (kind 'hour', hash '00'…'23', `uses` = actions in that hour).
-- Taught only by what a thief cannot do cheaply: a redemption made (an order through the merchant's
-- checkout) or a step-up passed. A conversion or wallet read from a new device never teaches it, so
-- a small first conversion cannot make a thief's device "known". Features, not truth: written after
-- the answer.
CREATE TABLE customer_sightings (
  customer_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('device', 'prefix', 'payment', 'hour')),
  hash text NOT NULL,
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  verified_at timestamptz,
  uses integer NOT NULL CHECK (uses >= 1),
  PRIMARY KEY (customer_id, kind, hash)
);

-- One row per conversion or wallet read that reached the rules: the request context (hashes only),
-- the decision, and what came of it. A conversion's row commits with the conversion.
CREATE TABLE loyalty_decisions (
  id text PRIMARY KEY,
  created_at timestamptz NOT NULL,
  operation text NOT NULL CHECK (operation IN ('conversion', 'wallet_read')),
  channel text NOT NULL CHECK (channel IN ('checkout', 'storefront')),
  customer_id text NOT NULL,
  program_id text,
  idempotency_key text,
  conversion_id text,
  action text NOT NULL CHECK (action IN ('allow', 'review', 'challenge', 'block')),
  outcome text NOT NULL CHECK (outcome IN ('converted', 'read', 'challenged', 'blocked', 'refused')),
  context jsonb,
  decision jsonb NOT NULL
);

CREATE INDEX loyalty_decisions_customer_idx ON loyalty_decisions (customer_id, id DESC);
CREATE INDEX loyalty_decisions_created_idx ON loyalty_decisions (created_at, id);
