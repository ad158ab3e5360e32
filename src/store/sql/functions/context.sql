-- Everything a validation or redemption decides on, read in one call. A function rather than a
-- query so that its statements' plans are cached per connection (PGlite parses and plans every query
-- it is sent). Generic plans: every statement is an indexed lookup whose generic plan is the right
-- one, and with NULL arguments (a new customer has no person) PostgreSQL would otherwise re-plan
-- all of them on every call.
CREATE OR REPLACE FUNCTION promoguard_context(
  p_normalized text, p_customer_id text, p_key text, p_keys text[], p_currency text, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  v_code codes%ROWTYPE;
  v_campaign campaigns%ROWTYPE;
  v_existing jsonb;
  v_persons text[];
BEGIN
  IF p_key IS NOT NULL THEN
    SELECT to_jsonb(r) - 'context' INTO v_existing FROM redemptions r WHERE r.idempotency_key = p_key;
    -- A repeat is answered with what it made: nothing else is read for it.
    IF v_existing IS NOT NULL THEN
      RETURN jsonb_build_object('existing', v_existing);
    END IF;
  END IF;
  SELECT * INTO v_code FROM codes WHERE normalized = p_normalized;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('existing', v_existing);
  END IF;
  SELECT * INTO v_campaign FROM campaigns WHERE id = v_code.campaign_id;
  SELECT array_agg(DISTINCT person_id) INTO v_persons FROM identity_nodes WHERE key = ANY (p_keys);
  RETURN jsonb_build_object(
    'existing', v_existing,
    'code', to_jsonb(v_code),
    'campaign', to_jsonb(v_campaign),
    'customer_uses', COALESCE((SELECT u.uses FROM customer_usage u
                                WHERE u.campaign_id = v_campaign.id AND u.customer_id = p_customer_id), 0),
    'person_uses', CASE WHEN v_campaign.per_person_cap IS NULL THEN 0 ELSE
       COALESCE((SELECT sum(pu.uses) FROM person_usage pu
                  WHERE pu.campaign_id = v_campaign.id AND pu.person_id = ANY (v_persons)), 0) END,
    'partner_full', COALESCE((SELECT pc.cap IS NOT NULL AND pc.used >= pc.cap FROM partner_caps pc
                               WHERE pc.campaign_id = v_campaign.id AND pc.partner = v_code.partner), false),
    'throttled', v_campaign.throttle_per_minute IS NOT NULL AND COALESCE(
       (SELECT m.uses >= v_campaign.throttle_per_minute FROM campaign_minute m
         WHERE m.campaign_id = v_campaign.id AND m.minute = date_trunc('minute', p_now)), false),
    'linked_accounts', (SELECT count(DISTINCT m.key) FROM (
       SELECT n.key FROM identity_nodes n
        WHERE starts_with(n.key, 'customer:') AND n.person_id = ANY (v_persons)
       UNION SELECT 'customer:' || p_customer_id) AS m),
    'customer_redemptions', (SELECT count(*) FROM (SELECT 1 FROM redemptions r
       WHERE r.customer_id = p_customer_id AND r.status = 'redeemed' LIMIT 1000) AS cr),
    'mean_subtotal', (SELECT avg(s.subtotal_minor) FROM (SELECT r.subtotal_minor FROM redemptions r
       WHERE r.customer_id = p_customer_id AND r.currency = p_currency AND r.status = 'redeemed'
       ORDER BY r.id DESC LIMIT 20) AS s));
END $fn$;
