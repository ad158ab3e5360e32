-- Redeem. Locks in one fixed order, cold rows first and the hot ones (code, campaign) last so they
-- are held as briefly as possible: the identity nodes (sorted), the new redemption row (its
-- idempotency key), the person's and the customer's usage, the partner cap, the code, the campaign,
-- the campaign's current minute. The rollback takes an existing redemption's row, never one being
-- inserted, then the same order, so the two never deadlock. The person is found before the row is
-- written, so the row is written once, with its person.
-- The caps passed in belong to campaign version p_campaign_version; the campaign UPDATE checks that
-- version, so none of them can be stale. Generic plans, as in context.sql: every statement is an
-- indexed lookup or update whose generic plan is the right one.
CREATE OR REPLACE FUNCTION promoguard_redeem(
  p_id text, p_event_id text, p_idempotency_key text, p_fingerprint text,
  p_code_id text, p_campaign_id text, p_campaign_version integer,
  p_customer_id text, p_order_id text, p_currency text,
  p_subtotal_minor bigint, p_discount_minor bigint, p_now timestamptz,
  p_per_customer_cap integer, p_per_person_cap integer, p_throttle_per_minute integer,
  p_partner text, p_person_candidate text, p_identity_keys text[], p_context jsonb,
  p_decision jsonb, p_review boolean, p_shared_limit integer
) RETURNS jsonb LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  v_redemption redemptions%ROWTYPE;
  v_campaign campaigns%ROWTYPE;
  v_code codes%ROWTYPE;
  v_persons text[];
  v_person text;
  v_created timestamptz := (p_context->>'account_created_at')::timestamptz;
  -- A decision without an id takes the redemption's (same ULID, prefix dec_).
  v_decision_id text := CASE WHEN p_decision IS NOT NULL
                             THEN COALESCE(p_decision->>'id', 'dec_' || substr(p_id, 5)) END;
BEGIN
  BEGIN
    IF cardinality(p_identity_keys) > 0 THEN
      -- Link everything seen together into one person (merging persons), then count per person.
      INSERT INTO identity_nodes (key, person_id, first_seen, account_created_at)
      SELECT k, p_person_candidate, p_now, CASE WHEN k = 'customer:' || p_customer_id THEN v_created END
        FROM unnest(p_identity_keys) AS k ORDER BY k
      ON CONFLICT (key) DO NOTHING;
      PERFORM 1 FROM identity_nodes WHERE key = ANY (p_identity_keys) ORDER BY key FOR UPDATE;
      -- An identifier already seen with p_shared_limit other customers (a pickup locker, an office, a
      -- shared family card at a school) no longer links: its edge is still recorded below, so the
      -- features see it, but it merges no person. Counted after the lock above, which every redemption
      -- carrying this identifier takes first: concurrent ones count each other's edges, so the limit is exact.
      -- An identifier an analyst cut when splitting a person (unlinked) links nobody either. An account
      -- established for 30 days or more links through no address or building someone else was seen
      -- with: the former tenant of a flat is not the customer who moved in. An address first seen now
      -- joins its person, so a new account shipping there later still links to it.
      SELECT array_agg(DISTINCT n.person_id) INTO v_persons
        FROM identity_nodes n
       WHERE n.key = ANY (p_identity_keys)
         AND (starts_with(n.key, 'customer:')
              OR NOT n.unlinked
             AND (p_shared_limit IS NULL OR (SELECT count(*) FROM (SELECT 1 FROM identity_edges e
                                         WHERE e.identifier_key = n.key AND e.customer_id <> p_customer_id
                                         LIMIT p_shared_limit) s) < p_shared_limit)
             AND NOT (COALESCE(v_created <= p_now - interval '30 days', false)
                      AND (starts_with(n.key, 'address:') OR starts_with(n.key, 'place:'))
                      AND n.person_id <> p_person_candidate));
      IF v_created IS NOT NULL THEN
        UPDATE identity_nodes SET account_created_at = v_created
         WHERE key = 'customer:' || p_customer_id AND account_created_at IS DISTINCT FROM v_created;
      END IF;
      SELECT min(p) INTO v_person FROM unnest(v_persons) AS p;
      IF cardinality(v_persons) > 1 THEN
        -- Lock every node of the persons being merged in key order first: two merges touching
        -- the same persons then queue instead of deadlocking.
        PERFORM 1 FROM identity_nodes WHERE person_id = ANY (v_persons) ORDER BY key FOR UPDATE;
        UPDATE identity_nodes SET person_id = v_person
         WHERE person_id = ANY (v_persons) AND person_id <> v_person;
        INSERT INTO person_usage AS pu (campaign_id, person_id, uses)
        SELECT campaign_id, v_person, sum(uses) FROM person_usage
         WHERE person_id = ANY (v_persons) AND person_id <> v_person GROUP BY campaign_id ORDER BY campaign_id
        ON CONFLICT (campaign_id, person_id) DO UPDATE SET uses = pu.uses + EXCLUDED.uses;
        DELETE FROM person_usage WHERE person_id = ANY (v_persons) AND person_id <> v_person;
      END IF;
      INSERT INTO identity_edges AS e (customer_id, identifier_key, first_seen, last_seen)
      SELECT p_customer_id, k, p_now, p_now FROM unnest(p_identity_keys) AS k
       WHERE NOT starts_with(k, 'customer:') ORDER BY k
      ON CONFLICT (customer_id, identifier_key) DO UPDATE SET last_seen = p_now;
    END IF;

    INSERT INTO redemptions (id, idempotency_key, request_fingerprint, campaign_id, code_id, customer_id,
                             order_id, currency, subtotal_minor, discount_minor, status, created_at, context,
                             review_status, decision_id, person_id)
    VALUES (p_id, p_idempotency_key, p_fingerprint, p_campaign_id, p_code_id, p_customer_id,
            p_order_id, p_currency, p_subtotal_minor, p_discount_minor, 'redeemed', p_now, p_context,
            CASE WHEN p_review THEN 'pending' END, v_decision_id, v_person)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING * INTO v_redemption;
    IF NOT FOUND THEN
      -- The key was taken by a concurrent call with it (the context read found none): undo the
      -- linking above and answer that redemption.
      RAISE EXCEPTION USING ERRCODE = 'PGRPL', MESSAGE = 'replayed';
    END IF;
    IF v_person IS NOT NULL THEN
      INSERT INTO person_usage AS pu (campaign_id, person_id, uses) VALUES (p_campaign_id, v_person, 1)
      ON CONFLICT (campaign_id, person_id) DO UPDATE SET uses = pu.uses + 1
        WHERE p_per_person_cap IS NULL OR pu.uses < p_per_person_cap;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'person_cap_reached';
      END IF;
    END IF;

    INSERT INTO customer_usage AS u (campaign_id, customer_id, uses)
    VALUES (p_campaign_id, p_customer_id, 1)
    ON CONFLICT (campaign_id, customer_id) DO UPDATE SET uses = u.uses + 1
      WHERE p_per_customer_cap IS NULL OR u.uses < p_per_customer_cap;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'customer_cap_reached';
    END IF;

    IF p_partner IS NOT NULL THEN
      -- Every partner's use is counted, capped or not, so a cap set later starts from the truth.
      INSERT INTO partner_caps AS pc (campaign_id, partner, cap, used) VALUES (p_campaign_id, p_partner, NULL, 1)
      ON CONFLICT (campaign_id, partner) DO UPDATE SET used = pc.used + 1
        WHERE pc.cap IS NULL OR pc.used < pc.cap;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'partner_cap_reached';
      END IF;
    END IF;

    UPDATE codes SET uses = uses + 1
     WHERE id = p_code_id AND status = 'active' AND (max_uses IS NULL OR uses < max_uses)
       AND (expires_at IS NULL OR p_now < expires_at);
    IF NOT FOUND THEN
      SELECT * INTO v_code FROM codes WHERE id = p_code_id;
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = CASE
        WHEN v_code.status = 'revoked' THEN 'code_revoked'
        WHEN v_code.expires_at IS NOT NULL AND p_now >= v_code.expires_at THEN 'code_expired'
        ELSE 'code_used_up' END;
    END IF;

    UPDATE campaigns
       SET redemptions_used = redemptions_used + 1, spent_minor = spent_minor + p_discount_minor
     WHERE id = p_campaign_id AND version = p_campaign_version AND status = 'active'
       AND starts_at <= p_now AND (ends_at IS NULL OR p_now < ends_at)
       AND (redemption_cap IS NULL OR redemptions_used < redemption_cap)
       AND (budget_minor IS NULL OR spent_minor + p_discount_minor <= budget_minor)
    RETURNING * INTO v_campaign;
    IF NOT FOUND THEN
      SELECT * INTO v_campaign FROM campaigns WHERE id = p_campaign_id;
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = CASE
        WHEN v_campaign.status = 'paused' THEN 'campaign_paused'
        WHEN v_campaign.status = 'ended' THEN 'campaign_ended'
        WHEN v_campaign.status <> 'active' THEN 'campaign_not_active'
        WHEN v_campaign.version <> p_campaign_version THEN 'campaign_changed'
        WHEN p_now < v_campaign.starts_at THEN 'campaign_not_started'
        WHEN v_campaign.ends_at IS NOT NULL AND p_now >= v_campaign.ends_at THEN 'campaign_expired'
        WHEN v_campaign.redemption_cap IS NOT NULL
             AND v_campaign.redemptions_used >= v_campaign.redemption_cap THEN 'campaign_cap_reached'
        ELSE 'budget_exhausted' END;
    END IF;

    IF p_throttle_per_minute IS NOT NULL THEN
      INSERT INTO campaign_minute AS m (campaign_id, minute, uses)
      VALUES (p_campaign_id, date_trunc('minute', p_now), 1)
      ON CONFLICT (campaign_id, minute) DO UPDATE SET uses = m.uses + 1 WHERE m.uses < p_throttle_per_minute;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'campaign_throttled';
      END IF;
    END IF;

    IF p_decision IS NOT NULL THEN
      -- The risk decision is kept with the redemption it let through, in the same transaction.
      INSERT INTO risk_decisions (id, created_at, operation, campaign_id, code_id, customer_id,
                                  redemption_id, action, outcome, decision)
      VALUES (v_decision_id, p_now, 'redemption', p_campaign_id, p_code_id, p_customer_id,
              p_id, p_decision->>'action', 'redeemed', jsonb_set(p_decision, '{id}', to_jsonb(v_decision_id)));
    END IF;
    INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type, created_at)
    VALUES (p_id, p_campaign_id, 'promo_expense', p_discount_minor, p_currency, 'redemption', p_now),
           (p_id, p_campaign_id, 'campaign_budget', -p_discount_minor, p_currency, 'redemption', p_now);
    INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
    VALUES (p_event_id, 'redemption.created', p_id,
            jsonb_build_object('redemption', to_jsonb(v_redemption) - 'context'), p_now);
    -- The stored context stays in the database: the caller answers without it.
    RETURN jsonb_build_object('outcome', 'redeemed', 'redemption', to_jsonb(v_redemption) - 'context');
  EXCEPTION WHEN SQLSTATE 'PGRPL' THEN
    SELECT * INTO v_redemption FROM redemptions WHERE idempotency_key = p_idempotency_key;
    RETURN jsonb_build_object('outcome', 'replayed', 'redemption', to_jsonb(v_redemption) - 'context');
  WHEN SQLSTATE 'PGREF' THEN
    RETURN jsonb_build_object('outcome', 'refused', 'reason', SQLERRM);
  END;
END $fn$;
