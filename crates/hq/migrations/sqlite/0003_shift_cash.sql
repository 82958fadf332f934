-- Cash per store and business day as the closed shifts counted it: what the ledger expected in
-- the drawers and what the blind counts found.
ALTER TABLE sales_daily ADD COLUMN shifts_closed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sales_daily ADD COLUMN cash_expected_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sales_daily ADD COLUMN cash_counted_minor BIGINT NOT NULL DEFAULT 0;
