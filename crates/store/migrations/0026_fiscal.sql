-- Tills commissioned for a fiscal regime (Austria's RKSV): the register id, its AES key, the
-- signature device, the time zone receipts are dated in, and the register's state after its
-- last receipt (turnover counter, the last receipt's document and its time with offset and zone,
-- `2026-10-25T02:10:00+01:00[Europe/Vienna]`), written in the
-- transaction of that receipt.
CREATE TABLE fiscal_registers (
    terminal TEXT PRIMARY KEY,
    regime TEXT NOT NULL,
    register_id TEXT NOT NULL,
    aes_key TEXT NOT NULL,
    device TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    turnover INTEGER NOT NULL DEFAULT 0,
    last_jws TEXT,
    last_at TEXT
) STRICT;

-- Each fiscal document, by the till's event that carries it: what the DEP export reads.
CREATE TABLE fiscal_receipts (
    terminal TEXT NOT NULL,
    seq INTEGER NOT NULL,
    receipt TEXT NOT NULL,
    kind TEXT NOT NULL,
    document TEXT NOT NULL,
    device_failed INTEGER NOT NULL,
    PRIMARY KEY (terminal, seq)
) STRICT;

CREATE INDEX fiscal_receipts_by_receipt ON fiscal_receipts (receipt);
