-- Gift card and store credit balances (postgres): one row per account, and every movement applied to
-- it from the stores' events with the balance it left, so an account that offline redemptions
-- drove below zero can be shown with the movements that did it.
CREATE TABLE stored_value_accounts (
    number TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance_minor BIGINT NOT NULL,
    issued_store TEXT,
    first_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE stored_value_moves (
    event_id TEXT NOT NULL,
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    store TEXT NOT NULL,
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hlc_wall BIGINT NOT NULL,
    currency TEXT NOT NULL,
    delta_minor BIGINT NOT NULL,
    balance_after_minor BIGINT NOT NULL,
    PRIMARY KEY (event_id, number, kind)
);

CREATE INDEX stored_value_moves_number ON stored_value_moves (number);
