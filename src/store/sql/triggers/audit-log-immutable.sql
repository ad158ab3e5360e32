-- The audit trail is append-only: no statement, from the API or from anyone holding the database
-- credentials of the service, rewrites or erases who changed what. TRUNCATE skips row triggers, hence
-- the statement trigger.
CREATE OR REPLACE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION promoguard_immutable();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION promoguard_immutable();
