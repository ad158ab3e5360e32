-- Return the points of a converted coupon that expired unused (programs with refund_on_expiry).
-- The conditional flip of refunded_at is the guard: a refund happens once, whatever runs it.
CREATE OR REPLACE FUNCTION promoguard_refund_expired(p_conversion_id text, p_event_id text, p_now timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  v_conversion conversions%ROWTYPE;
  v_balance bigint;
BEGIN
  -- The code row is locked so a redemption in flight settles first; the minute of grace covers
  -- clocks of different nodes disagreeing about the instant of expiry.
  PERFORM 1 FROM codes k JOIN conversions c ON c.code_id = k.id WHERE c.id = p_conversion_id FOR UPDATE OF k;
  UPDATE conversions c SET refunded_at = p_now
    FROM codes k
   WHERE c.id = p_conversion_id AND c.refunded_at IS NULL AND k.id = c.code_id
     AND k.uses = 0 AND k.expires_at + interval '1 minute' <= p_now
  RETURNING c.* INTO v_conversion;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_refundable');
  END IF;
  UPDATE points_accounts SET balance = balance + v_conversion.points, updated_at = p_now
   WHERE customer_id = v_conversion.customer_id
  RETURNING balance INTO v_balance;
  -- No idempotency key: that namespace belongs to callers (a credit may use any key); the
  -- refunded_at flip above is what makes the refund happen once.
  INSERT INTO points_movements (customer_id, kind, points, balance_after, reason, conversion_id, created_at)
  VALUES (v_conversion.customer_id, 'expiry_refund', v_conversion.points, v_balance,
          'coupon expired unused', v_conversion.id, p_now);
  INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
  VALUES (p_event_id, 'points.refunded', v_conversion.customer_id,
          jsonb_build_object('conversion', to_jsonb(v_conversion)), p_now);
  RETURN jsonb_build_object('outcome', 'refunded', 'conversion', to_jsonb(v_conversion));
END $fn$;
