-- Sales per store and business day as one fold that adds up (domain::shift::SalesEffect): what
-- voids gave back, the goods net of tax and the cash rounding, each net of voids and returns,
-- and the tax per component and rate. Days folded before this migration keep zero here and the
-- tax they had.
ALTER TABLE sales_daily ADD COLUMN voided_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sales_daily ADD COLUMN goods_net_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sales_daily ADD COLUMN rounding_minor BIGINT NOT NULL DEFAULT 0;

CREATE TABLE sales_daily_taxes (
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    code TEXT NOT NULL,
    rate TEXT NOT NULL,
    base_minor BIGINT NOT NULL,
    tax_minor BIGINT NOT NULL,
    PRIMARY KEY (store, day, code, rate)
);
