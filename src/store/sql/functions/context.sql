-- Everything a validation or redemption decides on, read in one call. A function rather than a
-- query so that its statements' plans are cached per connection (PGlite parses and plans every query
-- it is sent). Generic plans: every statement is an indexed lookup whose generic plan is the right
-- one, and with NULL arguments (a new customer has no person) PostgreSQL would otherwise re-plan
-- all of them on every call.
CREATE OR REPLACE FUNCTION promoguard_context(
  p_normalized text, p_customer_id text, p_key text, p_keys text[], p_currency text, p_now timestamptz,
  p_shared_limit integer, p_account_created_at timestamptz
) RETURNS jsonb LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  v_code codes%ROWTYPE;
  v_campaign campaigns%ROWTYPE;
  v_existing jsonb;
  v_persons text[];
  v_shared jsonb;
  v_customers text[];
  v_identity jsonb;
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
  -- How many other customers share each identifier (counted up to 100); one shared by p_shared_limit
  -- or more links nobody (as in redeem.sql), so it names no person here either.
  SELECT jsonb_object_agg(k, (SELECT count(*) FROM (SELECT 1 FROM identity_edges e
                                                      WHERE e.identifier_key = k AND e.customer_id <> p_customer_id
                                                      LIMIT 100) s))
    INTO v_shared FROM unnest(p_keys) AS k WHERE NOT starts_with(k, 'customer:');
  -- An account established for 30 days or more does not link through where it ships (as in
  -- redeem.sql): a customer who moves into a flat inherits nothing from the former tenant, while a
  -- new account shipping to a known address still links (the multi-accounting the address catches).
  SELECT array_agg(DISTINCT person_id) INTO v_persons FROM identity_nodes
   WHERE key = ANY (p_keys) AND NOT unlinked
     AND (starts_with(key, 'customer:') OR p_shared_limit IS NULL
          OR COALESCE((v_shared->>key)::integer, 0) < p_shared_limit)
     AND NOT (COALESCE(p_account_created_at <= p_now - interval '30 days', false)
              AND (starts_with(key, 'address:') OR starts_with(key, 'place:')));
  v_customers := ARRAY(SELECT substr(n.key, 10) FROM identity_nodes n
                        WHERE starts_with(n.key, 'customer:') AND n.person_id = ANY (v_persons)
                       UNION SELECT p_customer_id);
  -- What tells a ring from a household or an office: how many of the accounts are new, how many
  -- cards, devices and addresses they use between them, and how many identifiers other than an
  -- address two or more of them share (none: linked only by where they ship). Read only for a person
  -- of more than one account; alone, the request's own identifiers are the whole answer.
  IF cardinality(v_customers) > 1 THEN
    WITH x AS (
      SELECT e.customer_id, e.identifier_key AS k FROM identity_edges e WHERE e.customer_id = ANY (v_customers)
      UNION SELECT p_customer_id, k FROM unnest(p_keys) AS k WHERE NOT starts_with(k, 'customer:'))
    SELECT jsonb_build_object(
      'cards', count(DISTINCT k) FILTER (WHERE starts_with(k, 'payment:')),
      'devices', count(DISTINCT k) FILTER (WHERE starts_with(k, 'device:')),
      'addresses', count(DISTINCT k) FILTER (WHERE starts_with(k, 'address:')),
      'strong_links', (SELECT count(*) FROM (SELECT 1 FROM x x2
                        WHERE NOT starts_with(x2.k, 'address:') AND NOT starts_with(x2.k, 'place:')
                        GROUP BY x2.k HAVING count(DISTINCT x2.customer_id) >= 2) sl),
      'new_accounts', (SELECT count(*) FROM identity_nodes n
                        WHERE n.key = ANY (ARRAY(SELECT 'customer:' || c FROM unnest(v_customers) AS c))
                          AND n.key <> 'customer:' || p_customer_id
                          AND n.account_created_at > p_now - interval '7 days')
                      + CASE WHEN p_account_created_at > p_now - interval '7 days' THEN 1 ELSE 0 END)
      INTO v_identity FROM x;
  END IF;
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
    'partner_cap', CASE WHEN v_code.partner IS NULL THEN NULL ELSE
       (SELECT pc.cap FROM partner_caps pc WHERE pc.campaign_id = v_campaign.id AND pc.partner = v_code.partner) END,
    'throttled', v_campaign.throttle_per_minute IS NOT NULL AND COALESCE(
       (SELECT m.uses >= v_campaign.throttle_per_minute FROM campaign_minute m
         WHERE m.campaign_id = v_campaign.id AND m.minute = date_trunc('minute', p_now)), false),
    'linked_accounts', cardinality(v_customers),
    'identity', v_identity,
    'shared_max', COALESCE((SELECT max(v::integer) FROM jsonb_each_text(v_shared) AS t(k, v)), 0),
    'customer_redemptions', (SELECT count(*) FROM (SELECT 1 FROM redemptions r
       WHERE r.customer_id = p_customer_id AND r.status = 'redeemed' LIMIT 1000) AS cr),
    'mean_subtotal', (SELECT avg(s.subtotal_minor) FROM (SELECT r.subtotal_minor FROM redemptions r
       WHERE r.customer_id = p_customer_id AND r.currency = p_currency AND r.status = 'redeemed'
       ORDER BY r.id DESC LIMIT 20) AS s));
END $fn$;
