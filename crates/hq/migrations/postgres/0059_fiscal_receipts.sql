-- Every fiscal document the tills made (Austria: the RKSV's signed codes), as their
-- `FiscalReceipt` events carried them: what HQ's export of a store reads, and where a
-- signature device out for too long shows.
CREATE TABLE fiscal_receipts (
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    store TEXT NOT NULL,
    regime TEXT NOT NULL,
    receipt TEXT NOT NULL,
    kind TEXT NOT NULL,
    document TEXT NOT NULL,
    device_failed BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- With a till's first receipt: the cryptographic material container (JSON) a verifier
    -- reads beside the till's export.
    material TEXT,
    PRIMARY KEY (terminal, seq)
);

CREATE INDEX fiscal_receipts_by_store ON fiscal_receipts (store, terminal, seq);
