-- A review rule that counts other fresh accounts (a referral ring, a flood on a leaked code) can hold
-- the redemptions it counted along with the one that tripped it: the first members passed unflagged.
ALTER TABLE risk_rules ADD COLUMN hold_with text
  CHECK (hold_with IN ('code_new_accounts_24h', 'campaign_new_accounts_1h'));

-- The shipped rules this applies to, where an analyst has not edited them.
UPDATE risk_rules SET hold_with = 'code_new_accounts_24h'
 WHERE id = 'rule_default_referral_ring' AND version = 1;
UPDATE risk_rules SET hold_with = 'campaign_new_accounts_1h'
 WHERE id = 'rule_default_new_account_flood' AND version = 1;

