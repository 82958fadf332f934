-- Kassa HQ schema (sqlite). Stores and terminals, the inbox of raw events, parked batches,
-- projections (sales per day, stock per location) and the reference data change log.
CREATE TABLE stores (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL REFERENCES stores (id),
    public_key BLOB NOT NULL,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    acked_hash BLOB NOT NULL,
    last_contact_ms INTEGER
);

CREATE TABLE inbox (
    terminal TEXT NOT NULL REFERENCES terminals (id),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    hlc_wall INTEGER NOT NULL,
    hlc_counter INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    PRIMARY KEY (terminal, seq)
);

CREATE TABLE parked (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL,
    terminal TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);

CREATE TABLE sales_daily (
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    currency TEXT NOT NULL,
    sales INTEGER NOT NULL,
    voids INTEGER NOT NULL,
    returns INTEGER NOT NULL,
    gross_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    refunds_minor INTEGER NOT NULL,
    cash_minor INTEGER NOT NULL,
    PRIMARY KEY (store, day)
);

CREATE TABLE stock_moves (
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    hlc_wall INTEGER NOT NULL,
    hlc_counter INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    delta INTEGER NOT NULL,
    PRIMARY KEY (location, sku, hlc_wall, hlc_counter, event_id)
);

CREATE TABLE stock_levels (
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    on_hand INTEGER NOT NULL,
    count_wall INTEGER,
    count_counter INTEGER,
    count_event TEXT,
    PRIMARY KEY (location, sku)
);

CREATE TABLE ref_meta (
    singleton INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);

CREATE TABLE ref_entities (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload TEXT,
    PRIMARY KEY (kind, key)
);

CREATE INDEX ref_entities_by_version ON ref_entities (version);
