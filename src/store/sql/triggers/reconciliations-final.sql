-- A finished reconciliation report is never changed or deleted (functions/reconciliation-guard.sql).
CREATE OR REPLACE TRIGGER reconciliations_final BEFORE UPDATE OR DELETE ON reconciliations
  FOR EACH ROW EXECUTE FUNCTION promoguard_reconciliation_guard();
