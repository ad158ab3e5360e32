-- Webhook endpoints (Standard Webhooks) and their deliveries. The signing secret must be recoverable
-- to sign, so it is kept encrypted with a key derived from the server secret, never in clear.
CREATE TABLE webhook_endpoints (
  id text PRIMARY KEY,
  url text NOT NULL,
  description text,
  -- Event types sent to this endpoint; '*' means every type.
  event_types text[] NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  -- Why the service disabled it by itself ('gone': the endpoint answered 410); null otherwise.
  disabled_reason text,
  secret_encrypted text NOT NULL,
  -- After a rotation the old secret also signs until it expires, so receivers can switch over.
  previous_secret_encrypted text,
  previous_secret_expires_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz
);

-- One row per endpoint and event: the unique key makes the fan-out idempotent when the relay delivers
-- an event again.
CREATE TABLE webhook_deliveries (
  id text PRIMARY KEY,
  endpoint_id text NOT NULL REFERENCES webhook_endpoints (id),
  event_id text NOT NULL,
  event_type text NOT NULL,
  -- The exact body sent (and signed) on every attempt, so a retry is byte-identical.
  body text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  -- Position in the retry schedule; a redelivery starts it again.
  schedule_step integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  -- A sender holds a delivery until this instant; past it another node may take it over.
  leased_until timestamptz,
  lease_token text,
  last_status_code integer,
  last_error text,
  last_attempt_at timestamptz,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL,
  UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
  id bigserial PRIMARY KEY,
  delivery_id text NOT NULL REFERENCES webhook_deliveries (id),
  attempted_at timestamptz NOT NULL,
  status_code integer,
  -- A short reason when no HTTP answer came (timeout, refused address, connection error, redirect).
  error text,
  duration_ms integer NOT NULL
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
