-- Orders from the web: routed to a store (published on the reference change log as `order`
-- entities), holding their stock through a reservation in state `ordered` until the store
-- ships or hands them over (a step the store's ledger tells HQ) or they are cancelled.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    store TEXT NOT NULL,
    fulfilment TEXT NOT NULL,
    payment TEXT NOT NULL,
    psp_reference TEXT,
    status TEXT NOT NULL,
    short BIGINT NOT NULL DEFAULT 0,
    exception TEXT,
    reservation TEXT NOT NULL REFERENCES reservations (id),
    reference TEXT,
    carrier TEXT,
    tracking TEXT,
    sale_receipt TEXT,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    actor TEXT NOT NULL
);

CREATE INDEX orders_by_store ON orders (store, status, created_ms);

CREATE TABLE order_numbers (
    singleton BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE order_history (
    seq BIGSERIAL PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    at_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT
);

CREATE INDEX order_history_by_order ON order_history (order_id, seq);
