-- Abuse defenses: per-person caps over an identity graph, partner channels with their own caps,
-- per-minute throttles, block and allow lists, and the (hashed) request context of each redemption.

ALTER TABLE campaigns ADD COLUMN per_person_cap integer CHECK (per_person_cap >= 1);

ALTER TABLE campaigns ADD COLUMN throttle_per_minute integer CHECK (throttle_per_minute >= 1);

ALTER TABLE codes ADD COLUMN partner text;

CREATE INDEX codes_partner_idx ON codes (campaign_id, partner) WHERE partner IS NOT NULL;

CREATE TABLE partner_caps (
  campaign_id text NOT NULL REFERENCES campaigns (id),
  partner text NOT NULL,
  cap integer CHECK (cap >= 0),
  used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
  PRIMARY KEY (campaign_id, partner)
);

-- The identity graph. A node is a customer ('customer:<id>') or a hashed identifier
-- ('payment:<hmac>'); every node belongs to one person. Nodes seen together in a redemption join
-- one person (connected components, merged as redemptions arrive). Edges say why: which customer was
-- seen with which identifier.
CREATE TABLE identity_nodes (
  key text PRIMARY KEY,
  person_id text NOT NULL,
  first_seen timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX identity_nodes_person_idx ON identity_nodes (person_id);

CREATE TABLE identity_edges (
  customer_id text NOT NULL,
  identifier_key text NOT NULL,
  first_seen timestamptz NOT NULL,
  last_seen timestamptz NOT NULL,
  PRIMARY KEY (customer_id, identifier_key)
);

CREATE INDEX identity_edges_identifier_idx ON identity_edges (identifier_key);

CREATE TABLE person_usage (
  campaign_id text NOT NULL REFERENCES campaigns (id),
  person_id text NOT NULL,
  uses integer NOT NULL CHECK (uses >= 0),
  PRIMARY KEY (campaign_id, person_id)
);

CREATE TABLE campaign_minute (
  campaign_id text NOT NULL REFERENCES campaigns (id),
  minute timestamptz NOT NULL,
  uses integer NOT NULL,
  PRIMARY KEY (campaign_id, minute)
);

CREATE TABLE list_entries (
  id bigserial PRIMARY KEY,
  list text NOT NULL CHECK (list IN ('block', 'allow')),
  identifier_type text NOT NULL,
  identifier_hash text NOT NULL,
  reason text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  removed_at timestamptz,
  removed_by text
);

CREATE UNIQUE INDEX list_entries_active_idx ON list_entries (identifier_hash, identifier_type, list)
WHERE removed_at IS NULL;

ALTER TABLE redemptions ADD COLUMN person_id text;

ALTER TABLE redemptions ADD COLUMN context jsonb;
