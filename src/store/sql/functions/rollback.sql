-- Roll back. The status flip is the guard: only the call that moves the row from 'redeemed' to
-- 'rolled_back' restores the counters, so repeats and concurrent rollbacks restore exactly once.
-- The person's usage is restored on the person the customer belongs to now (persons merge).
CREATE OR REPLACE FUNCTION promoguard_rollback(p_id text, p_event_id text, p_reason text, p_now timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  v_redemption redemptions%ROWTYPE;
  v_partner text;
  v_person text;
BEGIN
  UPDATE redemptions SET status = 'rolled_back', rolled_back_at = p_now, rollback_reason = p_reason
   WHERE id = p_id AND status = 'redeemed'
  RETURNING * INTO v_redemption;
  IF NOT FOUND THEN
    SELECT * INTO v_redemption FROM redemptions WHERE id = p_id;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    RETURN jsonb_build_object('outcome', 'already_rolled_back', 'redemption', to_jsonb(v_redemption));
  END IF;

  IF v_redemption.person_id IS NOT NULL THEN
    -- Lock the customer's node: a merge in flight holds it until commit, so this waits and then
    -- finds the person the usage was merged into (an unlocked read could decrement a row the
    -- merge is about to sum and delete).
    SELECT person_id INTO v_person FROM identity_nodes
     WHERE key = 'customer:' || v_redemption.customer_id FOR UPDATE;
    UPDATE person_usage SET uses = uses - 1
     WHERE campaign_id = v_redemption.campaign_id AND person_id = v_person AND uses > 0;
  END IF;
  UPDATE customer_usage SET uses = uses - 1
   WHERE campaign_id = v_redemption.campaign_id AND customer_id = v_redemption.customer_id;
  SELECT partner INTO v_partner FROM codes WHERE id = v_redemption.code_id;
  IF v_partner IS NOT NULL THEN
    UPDATE partner_caps SET used = used - 1
     WHERE campaign_id = v_redemption.campaign_id AND partner = v_partner AND used > 0;
  END IF;
  UPDATE codes SET uses = uses - 1 WHERE id = v_redemption.code_id;
  UPDATE campaigns
     SET redemptions_used = redemptions_used - 1, spent_minor = spent_minor - v_redemption.discount_minor
   WHERE id = v_redemption.campaign_id;

  INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type, created_at)
  VALUES (p_id, v_redemption.campaign_id, 'promo_expense', -v_redemption.discount_minor,
          v_redemption.currency, 'reversal', p_now),
         (p_id, v_redemption.campaign_id, 'campaign_budget', v_redemption.discount_minor,
          v_redemption.currency, 'reversal', p_now);
  INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
  VALUES (p_event_id, 'redemption.rolled_back', p_id,
          jsonb_build_object('redemption', to_jsonb(v_redemption) - 'context'), p_now);
  RETURN jsonb_build_object('outcome', 'rolled_back', 'redemption', to_jsonb(v_redemption));
END $fn$;
