-- Reconciliation reports: each run checks the counters, the ledgers and the outbox against the rows
-- they summarise and keeps every mismatch it found. A report is written while it runs and never
-- changed after it finishes (triggers/reconciliations-final.sql, reconciliation-items-append-only.sql).

CREATE TABLE reconciliations (
  id text PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('running', 'ok', 'mismatch', 'failed')),
  -- The API key that asked for it, 'cli', or 'schedule'.
  triggered_by text NOT NULL,
  started_at timestamptz NOT NULL,
  -- The running node renews it; a run whose heartbeat is long past was abandoned by a node that died.
  heartbeat_at timestamptz NOT NULL,
  finished_at timestamptz,
  summary jsonb,
  -- Why a failed run failed: 'error' (the log has the detail), 'abandoned' or 'interrupted'.
  failure text,
  CHECK ((status = 'running') = (finished_at IS NULL)),
  CHECK ((status = 'failed') = (failure IS NOT NULL))
);

-- At most one run at a time across every node: a second start conflicts here.
CREATE UNIQUE INDEX reconciliations_one_running_idx ON reconciliations ((true)) WHERE status = 'running';

CREATE TABLE reconciliation_items (
  id bigserial PRIMARY KEY,
  reconciliation_id text NOT NULL REFERENCES reconciliations (id),
  kind text NOT NULL,
  campaign_id text,
  -- The ids that name the mismatched thing, e.g. {"campaign_id": …, "code_id": …}; values are text.
  entity jsonb NOT NULL,
  -- Set for money (minor units of this currency); NULL for rows, counts and points.
  currency text,
  unit text NOT NULL CHECK (unit IN ('minor', 'count', 'points')),
  expected bigint NOT NULL,
  actual bigint NOT NULL,
  difference bigint NOT NULL,
  CHECK (difference = actual - expected),
  CHECK ((unit = 'minor') = (currency IS NOT NULL))
);

CREATE INDEX reconciliation_items_report_idx ON reconciliation_items (reconciliation_id, id);
