-- Learned scoring models, versioned. A new model starts in shadow (scored and recorded, read by no
-- rule); promotion makes it the one enforcing model. At most one of each at a time.
CREATE TABLE score_models (
  version integer PRIMARY KEY,
  format integer NOT NULL,
  status text NOT NULL CHECK (status IN ('shadow', 'enforcing', 'retired')),
  model jsonb NOT NULL,
  evaluation jsonb NOT NULL,
  trained_on jsonb NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  promoted_by text,
  promoted_at timestamptz
);
CREATE UNIQUE INDEX score_models_one_enforcing ON score_models (status) WHERE status = 'enforcing';
CREATE UNIQUE INDEX score_models_one_shadow ON score_models (status) WHERE status = 'shadow';
