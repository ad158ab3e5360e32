-- The audit trail's filters (GET /v1/audit pages newest first by id) and the two-person approvals.

CREATE INDEX audit_log_actor_idx ON audit_log (actor, id DESC);

-- text_pattern_ops: an action prefix (`campaign.`) is a LIKE 'campaign.%' that must use the index under
-- any collation.
CREATE INDEX audit_log_action_idx ON audit_log (action text_pattern_ops, id DESC);

CREATE INDEX audit_log_created_idx ON audit_log (created_at, id DESC);

-- A risky campaign change waiting for a second key. `change` is the change as requested, applied as is
-- on approval; `target_version` and `target_status` are the campaign as the requester saw it, so a
-- campaign changed in between is refused instead of changed under terms nobody approved.
CREATE TABLE approvals (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('campaign.create', 'campaign.update')),
  target_id text NOT NULL REFERENCES campaigns (id),
  target_version integer NOT NULL,
  target_status text NOT NULL,
  change jsonb NOT NULL,
  rules text[] NOT NULL CHECK (cardinality(rules) > 0),
  reason text,
  requested_by text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
  decided_by text,
  decided_at timestamptz,
  note text,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
  CHECK ((status = 'pending') = (decided_at IS NULL)),
  -- The second person is a different key; the service refuses it first, this holds it for any writer.
  CHECK (status <> 'approved' OR decided_by <> requested_by)
);

CREATE INDEX approvals_status_idx ON approvals (status, id DESC);

CREATE INDEX approvals_target_idx ON approvals (target_id, id DESC);
