-- Convert points into a single-use coupon bound to the customer. The balance and the UTC-day total
-- each move by one conditional statement, so concurrent conversions can neither overdraw the
-- balance nor pass the daily limit. A code text that collides (unique index or shape guard) comes
-- back as 'code_collision' with nothing changed, and the caller draws a new one.
CREATE OR REPLACE FUNCTION promoguard_convert(
  p_id text, p_event_id text, p_key text, p_fingerprint text, p_customer_id text, p_program_id text,
  p_points bigint, p_amount_minor bigint, p_currency text, p_daily_limit bigint, p_utc_day date,
  p_code_id text, p_code text, p_normalized text, p_campaign_id text, p_expires_at timestamptz,
  p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  v_conversion conversions%ROWTYPE;
  v_code codes%ROWTYPE;
  v_balance bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('promoguard:conversion:' || p_customer_id || ':' || p_key, 0));
  SELECT * INTO v_conversion FROM conversions WHERE customer_id = p_customer_id AND idempotency_key = p_key;
  IF FOUND THEN
    SELECT * INTO v_code FROM codes WHERE id = v_conversion.code_id;
    RETURN jsonb_build_object('outcome', 'replayed', 'conversion', to_jsonb(v_conversion), 'code', to_jsonb(v_code));
  END IF;
  BEGIN
    -- Points are never spent on a coupon its campaign would refuse (paused, ended, out of window).
    IF NOT EXISTS (SELECT 1 FROM campaigns WHERE id = p_campaign_id AND status = 'active'
                    AND starts_at <= p_now AND (ends_at IS NULL OR p_now < ends_at)) THEN
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'points_program_inactive';
    END IF;
    UPDATE points_accounts SET balance = balance - p_points, updated_at = p_now
     WHERE customer_id = p_customer_id AND balance >= p_points
    RETURNING balance INTO v_balance;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'insufficient_points';
    END IF;
    IF p_points > p_daily_limit THEN
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'daily_conversion_limit_exceeded';
    END IF;
    INSERT INTO points_daily AS d (customer_id, utc_day, points) VALUES (p_customer_id, p_utc_day, p_points)
    ON CONFLICT (customer_id, utc_day) DO UPDATE SET points = d.points + p_points
      WHERE d.points + p_points <= p_daily_limit;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'daily_conversion_limit_exceeded';
    END IF;
    INSERT INTO codes (id, campaign_id, code, normalized, kind, max_uses, customer_id, amount_minor,
                       expires_at, created_at)
    VALUES (p_code_id, p_campaign_id, p_code, p_normalized, 'unique', 1, p_customer_id, p_amount_minor,
            p_expires_at, p_now)
    RETURNING * INTO v_code;
    INSERT INTO conversions (id, idempotency_key, request_fingerprint, customer_id, program_id, points,
                             amount_minor, currency, code_id, utc_day, created_at)
    VALUES (p_id, p_key, p_fingerprint, p_customer_id, p_program_id, p_points, p_amount_minor, p_currency,
            p_code_id, p_utc_day, p_now)
    RETURNING * INTO v_conversion;
    INSERT INTO points_movements (customer_id, kind, points, balance_after, reason, conversion_id, created_at)
    VALUES (p_customer_id, 'conversion', -p_points, v_balance, 'converted into a coupon', p_id, p_now);
    INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
    VALUES (p_event_id, 'points.converted', p_customer_id,
            jsonb_build_object('conversion', to_jsonb(v_conversion), 'code_id', p_code_id), p_now);
    RETURN jsonb_build_object('outcome', 'converted', 'conversion', to_jsonb(v_conversion), 'code', to_jsonb(v_code));
  EXCEPTION
    WHEN SQLSTATE 'PGREF' THEN
      RETURN jsonb_build_object('outcome', 'refused', 'reason', SQLERRM);
    WHEN unique_violation OR SQLSTATE 'PGSHP' THEN
      RETURN jsonb_build_object('outcome', 'code_collision');
  END;
END $fn$;
