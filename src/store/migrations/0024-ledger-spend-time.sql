-- Finance reads discount spend by period from the ledger: the expense side of it by time, so a report
-- over a window reads that window's entries, never the whole ledger.
CREATE INDEX ledger_entries_expense_time_idx ON ledger_entries (created_at) WHERE account = 'promo_expense';
