-- The register's state after a receipt is kept with the receipt (its turnover counter and its
-- time), in the one row the receipt writes anyway, instead of rewriting `fiscal_registers` for
-- every receipt: the till's state is its last receipt's row. Receipts written before this
-- migration have neither; `fiscal_registers` holds the state after the last of them.
ALTER TABLE fiscal_receipts ADD COLUMN turnover INTEGER;
ALTER TABLE fiscal_receipts ADD COLUMN at TEXT;
