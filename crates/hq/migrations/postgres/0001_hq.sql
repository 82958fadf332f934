-- Kassa HQ schema (postgres). Stores and terminals, the inbox of raw events, parked batches,
-- projections (sales per day, stock per location) and the reference data change log.
CREATE TABLE stores (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    store TEXT NOT NULL REFERENCES stores (id),
    public_key BYTEA NOT NULL,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    acked_hash BYTEA NOT NULL,
    last_contact_ms BIGINT
);

CREATE TABLE inbox (
    terminal TEXT NOT NULL REFERENCES terminals (id),
    seq BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body BYTEA NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    hlc_wall BIGINT NOT NULL,
    hlc_counter BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    applied BIGINT NOT NULL,
    PRIMARY KEY (terminal, seq)
);

CREATE TABLE parked (
    id BIGSERIAL PRIMARY KEY,
    store TEXT NOT NULL,
    terminal TEXT NOT NULL,
    from_seq BIGINT NOT NULL,
    count BIGINT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);

CREATE TABLE sales_daily (
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    currency TEXT NOT NULL,
    sales BIGINT NOT NULL,
    voids BIGINT NOT NULL,
    returns BIGINT NOT NULL,
    gross_minor BIGINT NOT NULL,
    tax_minor BIGINT NOT NULL,
    refunds_minor BIGINT NOT NULL,
    cash_minor BIGINT NOT NULL,
    PRIMARY KEY (store, day)
);

CREATE TABLE stock_moves (
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    hlc_wall BIGINT NOT NULL,
    hlc_counter BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    delta BIGINT NOT NULL,
    PRIMARY KEY (location, sku, hlc_wall, hlc_counter, event_id)
);

CREATE TABLE stock_levels (
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    on_hand BIGINT NOT NULL,
    count_wall BIGINT,
    count_counter BIGINT,
    count_event TEXT,
    PRIMARY KEY (location, sku)
);

CREATE TABLE ref_meta (
    singleton BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE TABLE ref_entities (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    payload TEXT,
    PRIMARY KEY (kind, key)
);

CREATE INDEX ref_entities_by_version ON ref_entities (version);
