-- The review queue's assignment: an analyst takes a held redemption and holds it until the lock
-- expires, so two people never work the same case. A case is free when nobody holds it or the lock
-- has run out (a closed browser never strands a case).
ALTER TABLE redemptions ADD COLUMN review_assigned_to text;
ALTER TABLE redemptions ADD COLUMN review_assigned_at timestamptz;
ALTER TABLE redemptions ADD COLUMN review_locked_until timestamptz;
-- Decided reviews, for the inbox's approved/rejected views (pending ones have their own index).
CREATE INDEX redemptions_reviewed_idx ON redemptions (review_status, id DESC)
WHERE review_status IN ('approved', 'rejected');
-- A case shows the customer's recent decisions, also the attempts that were blocked or challenged.
CREATE INDEX risk_decisions_customer_idx ON risk_decisions (customer_id, id DESC);
