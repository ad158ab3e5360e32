-- A reconciliation report is evidence for finance: once it finishes, nothing may change it. While it
-- runs, only its own node moves it on (heartbeat, then one final status), and items are only ever
-- added to a running report, so a node that lost its run (abandoned after a stall) cannot append to a
-- report that another node has already closed.
CREATE OR REPLACE FUNCTION promoguard_reconciliation_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_TABLE_NAME = 'reconciliation_items' THEN
    IF TG_OP <> 'INSERT' THEN
      RAISE EXCEPTION 'reconciliation items are never changed or deleted';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM reconciliations
                    WHERE id = NEW.reconciliation_id AND status = 'running') THEN
      RAISE EXCEPTION 'reconciliation % is not running', NEW.reconciliation_id;
    END IF;
    RETURN NEW;
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'reconciliation reports are never deleted';
  END IF;
  IF OLD.status <> 'running' THEN
    RAISE EXCEPTION 'reconciliation % is finished; its report is never changed', OLD.id;
  END IF;
  IF NEW.id <> OLD.id OR NEW.triggered_by <> OLD.triggered_by OR NEW.started_at <> OLD.started_at THEN
    RAISE EXCEPTION 'a reconciliation keeps its id, trigger and start';
  END IF;
  RETURN NEW;
END $fn$;
