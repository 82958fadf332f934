-- What the drawer paid in cash of a return's card refund that no terminal gave back, one row per
-- `CardRefundPaidInCash` event, written in the event's transaction.
CREATE TABLE card_refunds_in_cash (
    event_id TEXT PRIMARY KEY,
    return_receipt TEXT NOT NULL,
    minor INTEGER NOT NULL
);
CREATE INDEX card_refunds_in_cash_by_return ON card_refunds_in_cash (return_receipt);
