-- Credit or debit points. Repeats of one idempotency key queue on an advisory lock held to commit;
-- the first applies, later ones (also concurrent ones) find its movement and change nothing.
-- A debit is one conditional UPDATE: the balance never goes below zero.
CREATE OR REPLACE FUNCTION promoguard_points_apply(
  p_customer_id text, p_kind text, p_points bigint, p_reason text,
  p_key text, p_fingerprint text, p_event_id text, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  v_movement points_movements%ROWTYPE;
  v_balance bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('promoguard:points:' || p_customer_id || ':' || p_key, 0));
  SELECT * INTO v_movement FROM points_movements WHERE customer_id = p_customer_id AND idempotency_key = p_key;
  IF FOUND THEN
    RETURN jsonb_build_object('outcome', 'replayed', 'movement', to_jsonb(v_movement));
  END IF;
  IF p_kind = 'credit' THEN
    INSERT INTO points_accounts AS a (customer_id, balance, created_at, updated_at)
    VALUES (p_customer_id, p_points, p_now, p_now)
    ON CONFLICT (customer_id) DO UPDATE SET balance = a.balance + p_points, updated_at = p_now
    RETURNING balance INTO v_balance;
  ELSE
    UPDATE points_accounts SET balance = balance - p_points, updated_at = p_now
     WHERE customer_id = p_customer_id AND balance >= p_points
    RETURNING balance INTO v_balance;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('outcome', 'refused', 'reason', 'insufficient_points');
    END IF;
  END IF;
  INSERT INTO points_movements (customer_id, kind, points, balance_after, reason, idempotency_key,
                                request_fingerprint, created_at)
  VALUES (p_customer_id, p_kind, CASE WHEN p_kind = 'credit' THEN p_points ELSE -p_points END, v_balance,
          p_reason, p_key, p_fingerprint, p_now)
  RETURNING * INTO v_movement;
  INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
  VALUES (p_event_id, CASE WHEN p_kind = 'credit' THEN 'points.credited' ELSE 'points.debited' END,
          p_customer_id, jsonb_build_object('movement', to_jsonb(v_movement)), p_now);
  RETURN jsonb_build_object('outcome', 'applied', 'movement', to_jsonb(v_movement));
END $fn$;
