-- Automated remediation: policies (as data) that act on alerts, and the remediations they applied.

CREATE TABLE remediation_policies (
  id text PRIMARY KEY,
  name text NOT NULL,
  -- Which alerts the policy covers: every alert (global), one campaign's, or one partner's (optionally
  -- within one campaign). A more specific policy replaces the broader ones for the same alert.
  scope_type text NOT NULL CHECK (scope_type IN ('global', 'campaign', 'partner')),
  campaign_id text REFERENCES campaigns (id),
  partner text,
  alert_kind text NOT NULL,
  -- The alert scopes it reacts to (code, campaign, partner, batch, …); NULL = any.
  alert_scopes text[],
  -- 'page' = only page alerts; 'ticket' (or NULL) = both.
  min_severity text CHECK (min_severity IN ('ticket', 'page')),
  action text NOT NULL CHECK (action IN ('throttle', 'require_step_up', 'hold_for_review', 'pause',
    'revoke_unredeemed', 'tighten_guessing')),
  params jsonb NOT NULL DEFAULT '{}'::jsonb,
  mode text NOT NULL CHECK (mode IN ('enforce', 'dry_run')),
  duration_seconds integer NOT NULL CHECK (duration_seconds BETWEEN 60 AND 2592000),
  enabled boolean NOT NULL DEFAULT true,
  pack text,
  version integer NOT NULL DEFAULT 1,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  CHECK ((scope_type = 'global') = (campaign_id IS NULL AND partner IS NULL)),
  CHECK (scope_type <> 'campaign' OR (campaign_id IS NOT NULL AND partner IS NULL)),
  CHECK (scope_type <> 'partner' OR partner IS NOT NULL)
);

CREATE INDEX remediation_policies_kind_idx ON remediation_policies (alert_kind) WHERE deleted_at IS NULL;

CREATE TABLE remediations (
  id text PRIMARY KEY,
  policy_id text NOT NULL REFERENCES remediation_policies (id),
  alert_id text NOT NULL,
  alert_kind text NOT NULL,
  action text NOT NULL,
  -- What it acts on: 'campaign', 'code', 'partner' or 'batch', and the ids that name it.
  target_type text NOT NULL CHECK (target_type IN ('campaign', 'code', 'partner', 'batch')),
  target_key text NOT NULL,
  campaign_id text,
  partner text,
  batch_id text,
  code_id text,
  params jsonb NOT NULL,
  dry_run boolean NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'lifted', 'expired')),
  -- The exact change made (or, dry-run, that would have been made), so the undo restores what was.
  change jsonb NOT NULL,
  applied_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL CHECK (expires_at > applied_at),
  ended_at timestamptz,
  ended_by text,
  end_reason text,
  -- What the undo did (or found changed since, and left alone).
  undo jsonb,
  -- A redelivered alert acts once per policy.
  UNIQUE (alert_id, policy_id)
);

-- One remediation in force per policy and target: a second alert while it holds adds nothing.
CREATE UNIQUE INDEX remediations_in_force_idx ON remediations (policy_id, target_key, dry_run)
WHERE status = 'active';

CREATE INDEX remediations_expiry_idx ON remediations (expires_at) WHERE status = 'active';

-- The codes a revoke_unredeemed remediation revoked: its undo gives back exactly these.
CREATE TABLE remediation_revoked_codes (
  remediation_id text NOT NULL REFERENCES remediations (id),
  code_id text NOT NULL REFERENCES codes (id),
  PRIMARY KEY (remediation_id, code_id)
);

-- The shipped defaults (docs/remediation.md). Ids are fixed so a start never adds them twice; an
-- operator may change, disable or delete them.
INSERT INTO remediation_policies
  (id, name, scope_type, alert_kind, alert_scopes, min_severity, action, params, mode, duration_seconds,
   pack, created_by)
VALUES
  ('rpol_default_leak_spike_throttle', 'Leak spike: throttle the campaign', 'global', 'redemption_spike',
   ARRAY['code', 'campaign'], NULL, 'throttle', '{"per_minute": 10}', 'enforce', 3600, 'default',
   'promoguard'),
  ('rpol_default_leak_spike_step_up', 'Leak spike: step-up for new and guest customers', 'global',
   'redemption_spike', ARRAY['code', 'campaign'], NULL, 'require_step_up',
   '{"applies_to": ["new_accounts", "unauthenticated"], "new_account_hours": 72}', 'enforce', 3600,
   'default', 'promoguard'),
  ('rpol_default_guessing_wave', 'Guessing wave: tighten the guessing limit', 'global', 'refusal_wave',
   ARRAY['batch', 'campaign'], NULL, 'tighten_guessing', '{"failures_per_caller": 3, "window_seconds": 600}',
   'enforce', 3600, 'default', 'promoguard'),
  ('rpol_default_partner_spike', 'Partner spike: pause the partner', 'global', 'redemption_spike',
   ARRAY['partner'], NULL, 'pause', '{}', 'enforce', 3600, 'default', 'promoguard')
ON CONFLICT (id) DO NOTHING;
