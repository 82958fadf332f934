-- One stock for every channel: reservations (a web shop's cart, a hold for a customer) with
-- their lines, the safety stock kept back per location and SKU (`*`: the location's default),
-- and the change feed a shop follows with a cursor (kept 7 days).
CREATE TABLE safety_stock (
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity_milli BIGINT NOT NULL,
    PRIMARY KEY (location, sku)
);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    reference TEXT,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    actor TEXT NOT NULL
);

CREATE INDEX reservations_by_state ON reservations (state, expires_ms);

CREATE TABLE reservation_lines (
    reservation TEXT NOT NULL REFERENCES reservations (id),
    sku TEXT NOT NULL,
    quantity_milli BIGINT NOT NULL,
    PRIMARY KEY (reservation, sku)
);

CREATE INDEX reservation_lines_by_sku ON reservation_lines (sku);

CREATE TABLE availability_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX availability_changes_by_time ON availability_changes (at_ms);
