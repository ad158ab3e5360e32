-- The discount ledger is append-only: a correction is a reversing entry, never an edit.
CREATE OR REPLACE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION promoguard_immutable();
