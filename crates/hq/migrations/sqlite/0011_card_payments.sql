-- Card payments as the stores' ledgers record them (CardRequestStarted/Ended, CardOffline*):
-- every payment request with its outcome and, for offline approvals, its settlement
-- ('online', 'pending', 'settled', 'declined'). No card number: references and amounts only.
CREATE TABLE card_payments (
    store TEXT NOT NULL,
    terminal TEXT NOT NULL,
    service_id TEXT NOT NULL,
    sale TEXT NOT NULL,
    shift TEXT,
    currency TEXT NOT NULL,
    requested_minor BIGINT NOT NULL,
    started_ms BIGINT NOT NULL,
    outcome TEXT,
    poi TEXT,
    authorised_minor BIGINT,
    settlement TEXT,
    PRIMARY KEY (terminal, service_id)
);

CREATE INDEX card_payments_by_settlement ON card_payments (settlement, store);

-- Offline approvals declined when the terminal forwarded them: the customer left with the goods.
CREATE TABLE card_declines (
    store TEXT NOT NULL,
    terminal TEXT NOT NULL,
    service_id TEXT NOT NULL,
    poi TEXT NOT NULL,
    receipt TEXT,
    cashier TEXT,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    declined_ms BIGINT NOT NULL,
    PRIMARY KEY (terminal, service_id)
);
