-- Indexes every redemption would otherwise pay for on its way in.

-- A case's customer history reaches a redemption's decision through the customer's redemptions;
-- only the decisions of stopped attempts (blocked, challenged: no redemption) need an index of their own.
DROP INDEX risk_decisions_customer_idx;
CREATE INDEX risk_decisions_stopped_customer_idx ON risk_decisions (customer_id, id DESC)
WHERE redemption_id IS NULL;

-- Spend by period: ledger rows are appended in time order, so a block range index finds a period for
-- next to nothing per insert, where a btree takes a write with every redemption.
DROP INDEX ledger_entries_expense_time_idx;
CREATE INDEX ledger_entries_time_brin ON ledger_entries USING brin (created_at);
