-- Decide a redemption held for review. The flip from 'pending' is the guard: one call approves or
-- rejects, repeats find it decided and change nothing. A rejection rolls the redemption back in the
-- same transaction (promoguard_rollback restores every counter exactly once, also when the merchant
-- rolled it back already) and labels its decision; both verdicts emit an event and an audit entry.
-- A case another analyst holds (lock not yet expired) is theirs to decide: the lock is part of the
-- guard, so a verdict can never slip in between a check and the flip.
CREATE OR REPLACE FUNCTION promoguard_review(
  p_id text, p_verdict text, p_label text, p_note text, p_actor text,
  p_event_id text, p_rollback_event_id text, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  v_redemption redemptions%ROWTYPE;
BEGIN
  UPDATE redemptions
     SET review_status = CASE p_verdict WHEN 'approve' THEN 'approved' ELSE 'rejected' END,
         reviewed_at = p_now, reviewed_by = p_actor,
         review_assigned_to = NULL, review_assigned_at = NULL, review_locked_until = NULL
   WHERE id = p_id AND review_status = 'pending'
     AND (review_assigned_to IS NULL OR review_assigned_to = p_actor OR review_locked_until <= p_now)
  RETURNING * INTO v_redemption;
  IF NOT FOUND THEN
    SELECT * INTO v_redemption FROM redemptions WHERE id = p_id;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('outcome', 'not_found');
    ELSIF v_redemption.review_status IS NULL THEN
      RETURN jsonb_build_object('outcome', 'not_under_review');
    ELSIF v_redemption.review_status = 'pending' THEN
      RETURN jsonb_build_object('outcome', 'locked', 'redemption', to_jsonb(v_redemption) - 'context');
    END IF;
    RETURN jsonb_build_object('outcome', 'already_reviewed', 'redemption', to_jsonb(v_redemption));
  END IF;
  IF p_verdict = 'reject' THEN
    PERFORM promoguard_rollback(p_id, p_rollback_event_id, 'review rejected (' || p_label || ')', p_now);
    SELECT * INTO v_redemption FROM redemptions WHERE id = p_id;
  END IF;
  IF v_redemption.decision_id IS NOT NULL THEN
    INSERT INTO risk_labels AS l (decision_id, label, note, created_by, created_at)
    VALUES (v_redemption.decision_id, p_label, p_note, p_actor, p_now)
    ON CONFLICT (decision_id) DO UPDATE
      SET label = EXCLUDED.label, note = EXCLUDED.note, created_by = EXCLUDED.created_by,
          created_at = EXCLUDED.created_at;
  END IF;
  INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
  VALUES (p_event_id, CASE p_verdict WHEN 'approve' THEN 'review.approved' ELSE 'review.rejected' END, p_id,
          jsonb_build_object('redemption', to_jsonb(v_redemption) - 'context', 'label', p_label,
                             'note', p_note, 'actor', p_actor), p_now);
  INSERT INTO audit_log (actor, action, target_id, reason, details, created_at)
  VALUES (p_actor, CASE p_verdict WHEN 'approve' THEN 'review.approved' ELSE 'review.rejected' END, p_id, p_note,
          jsonb_build_object('label', p_label, 'customer_id', v_redemption.customer_id,
                             'campaign_id', v_redemption.campaign_id, 'decision_id', v_redemption.decision_id),
          p_now);
  RETURN jsonb_build_object('outcome', 'reviewed', 'redemption', to_jsonb(v_redemption));
END $fn$;
