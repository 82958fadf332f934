-- Every line tills sold, by receipt, and how much of it tills took back (with the receipt):
-- what a return through the web shop is checked against. Kept by ingest.
CREATE TABLE receipt_lines (
    receipt TEXT NOT NULL,
    line BIGINT NOT NULL,
    store TEXT NOT NULL,
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    sku TEXT NOT NULL,
    sold BIGINT NOT NULL,
    returned BIGINT NOT NULL DEFAULT 0,
    voided BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (receipt, line)
);

-- In-store sales returned through the web shop (published on the reference change log as
-- `web-return` entities to the selling store and the store the goods are sent back to).
CREATE TABLE web_returns (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    receipt TEXT NOT NULL,
    sale_store TEXT NOT NULL,
    receive_at TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    reference TEXT,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    received_ms BIGINT,
    actor TEXT NOT NULL
);

CREATE INDEX web_returns_by_receipt ON web_returns (receipt);

CREATE TABLE web_return_lines (
    web_return TEXT NOT NULL REFERENCES web_returns (id),
    receipt TEXT NOT NULL,
    line BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (web_return, line)
);

CREATE INDEX web_return_lines_by_receipt ON web_return_lines (receipt, line);

CREATE TABLE web_return_numbers (
    singleton BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);
