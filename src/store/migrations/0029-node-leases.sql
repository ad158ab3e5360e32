-- Work one node of many does at a time (the streaming detectors): a lease per kind of work, held by one
-- node until it lapses. Expiry is the database's clock, so skew between nodes cannot hand it to two.

CREATE TABLE node_leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  acquired_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
