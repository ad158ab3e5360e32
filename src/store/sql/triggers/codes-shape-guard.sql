-- Every code inserted outside a generated batch passes the shape guard (functions/codes-shape-guard.sql).
CREATE OR REPLACE TRIGGER codes_shape_guard BEFORE INSERT ON codes
  FOR EACH ROW EXECUTE FUNCTION promoguard_codes_shape_guard();
