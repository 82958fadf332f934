-- Projections over the ledger (rebuildable), idempotency records and local reference data.
CREATE TABLE receipts (
    number TEXT PRIMARY KEY,
    terminal TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL
) STRICT;

CREATE TABLE returned_lines (
    sale_receipt TEXT NOT NULL,
    line INTEGER NOT NULL,
    milli INTEGER NOT NULL,
    PRIMARY KEY (sale_receipt, line)
) STRICT;

CREATE TABLE voided_sales (
    sale_receipt TEXT PRIMARY KEY
) STRICT;

CREATE TABLE stock (
    sku TEXT PRIMARY KEY,
    on_hand_milli INTEGER NOT NULL
) STRICT;

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL
) STRICT;

CREATE TABLE reference_meta (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version INTEGER NOT NULL,
    store_config TEXT NOT NULL,
    jurisdiction TEXT NOT NULL
) STRICT;

CREATE TABLE variants (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    name TEXT NOT NULL,
    tax_category TEXT NOT NULL,
    unit TEXT NOT NULL,
    store_channel INTEGER NOT NULL,
    online_channel INTEGER NOT NULL
) STRICT;

CREATE TABLE identifiers (
    key TEXT PRIMARY KEY,
    sku TEXT NOT NULL
) STRICT;

CREATE INDEX identifiers_by_sku ON identifiers (sku);

CREATE TABLE prices (
    book TEXT NOT NULL,
    version INTEGER NOT NULL,
    scope TEXT NOT NULL,
    sku TEXT NOT NULL,
    price_minor INTEGER NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER
) STRICT;

CREATE INDEX prices_by_sku ON prices (sku);
