-- The points ledger is append-only: a correction is a new movement, never an edit.
CREATE OR REPLACE TRIGGER points_movements_immutable BEFORE UPDATE OR DELETE ON points_movements
  FOR EACH ROW EXECUTE FUNCTION promoguard_immutable();
