-- Ledgers and the audit trail are append-only: a correction is a new (reversing) entry, never an edit.
-- Used by the triggers of ledger_entries, points_movements and audit_log.
CREATE OR REPLACE FUNCTION promoguard_immutable() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION '% rows are immutable; write a reversing entry instead', TG_TABLE_NAME;
END $fn$;
