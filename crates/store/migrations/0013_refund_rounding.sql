-- What the cash refunds of a sale have held back because no coin makes the exact amount (zero or
-- negative, less than one rounding increment): the sale's next refund adds it back. Sales
-- without a row have held nothing back, which is true of every return before this table: they
-- paid their exact share.
CREATE TABLE refund_held_back (
    sale_receipt TEXT PRIMARY KEY,
    minor INTEGER NOT NULL
) STRICT;
