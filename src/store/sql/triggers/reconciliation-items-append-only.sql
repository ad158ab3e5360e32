-- Mismatches are only added, and only to a running report (functions/reconciliation-guard.sql).
CREATE OR REPLACE TRIGGER reconciliation_items_append_only BEFORE INSERT OR UPDATE OR DELETE
  ON reconciliation_items FOR EACH ROW EXECUTE FUNCTION promoguard_reconciliation_guard();
