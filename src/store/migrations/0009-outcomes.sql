-- What became of a redeemed order (M7): chargebacks, refunds, fulfilment and confirmed abuse, as the
-- merchant reports them. One row per redemption and kind of outcome: a report repeated by a retrying
-- backend finds its row and changes nothing.
CREATE TABLE redemption_outcomes (
  id bigserial PRIMARY KEY,
  redemption_id text NOT NULL REFERENCES redemptions (id),
  campaign_id text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('chargeback', 'refund', 'fulfilled', 'confirmed_abuse')),
  amount_minor bigint CHECK (amount_minor >= 0),
  note text,
  recorded_by text NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL,
  UNIQUE (redemption_id, outcome)
);

CREATE INDEX redemption_outcomes_campaign_idx ON redemption_outcomes (campaign_id, outcome);
