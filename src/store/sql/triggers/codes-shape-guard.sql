-- Every code inserted outside a generated batch passes the shape guard (functions/codes-shape-guard.sql).
-- A generated code (batch_id set) needs no check, and the WHEN clause skips it without calling the
-- function: a batch of a million codes pays no per-row PL/pgSQL call.
CREATE OR REPLACE TRIGGER codes_shape_guard BEFORE INSERT ON codes
  FOR EACH ROW WHEN (NEW.batch_id IS NULL) EXECUTE FUNCTION promoguard_codes_shape_guard();
