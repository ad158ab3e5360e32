-- Alerts raised by the streaming detectors. One row per detector key and episode (the interval where
-- the rise began): the unique key makes raising idempotent, so an event delivered again, or two nodes
-- seeing the same wave, never make a second alert.
CREATE TABLE alerts (
  id text PRIMARY KEY,
  kind text NOT NULL,
  -- The detector and the key it watched, e.g. `rate:campaign:cmp_…`, `refusal:block:2001:db8:1::/48`.
  detector_key text NOT NULL,
  episode_start timestamptz NOT NULL,
  scope_type text NOT NULL,
  scope_id text NOT NULL,
  campaign_id text,
  partner text,
  batch_id text,
  severity text NOT NULL,
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
  observed double precision NOT NULL,
  expected double precision NOT NULL,
  interval_seconds integer NOT NULL,
  -- The detector's reading when it crossed: statistic, threshold, ratio, baseline, whether in a peak.
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  triggered_by_event_id text,
  triggered_at timestamptz NOT NULL,
  raised_at timestamptz NOT NULL,
  acknowledged_at timestamptz,
  acknowledged_by text,
  resolved_at timestamptz,
  resolved_by text,
  UNIQUE (detector_key, episode_start)
);
CREATE INDEX alerts_status ON alerts (status, id DESC);
CREATE INDEX alerts_campaign ON alerts (campaign_id, id DESC);

-- The detectors' state (baselines, open episodes), saved periodically and on shutdown so a restart
-- carries on with the baselines it had. One row per detector; text, since it is read and written whole.
CREATE TABLE detector_snapshots (
  name text PRIMARY KEY,
  snapshot text NOT NULL,
  saved_at timestamptz NOT NULL
);
