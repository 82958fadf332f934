-- The sales report's breakdowns: per store and business day, sales by the hour of the day in the
-- store's zone, by tender and by cashier (`dimension`, its `key`), and each shift close with its
-- cash count. Filled by ingest; the events HQ held before this migration are folded in once
-- (`projection_backfills`).
CREATE TABLE sales_breakdown (
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    dimension TEXT NOT NULL,
    key TEXT NOT NULL,
    currency TEXT NOT NULL,
    count BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    PRIMARY KEY (store, day, dimension, key)
);

CREATE TABLE shift_closes (
    terminal TEXT NOT NULL,
    shift TEXT NOT NULL,
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    closed_ms BIGINT NOT NULL,
    staff TEXT NOT NULL,
    currency TEXT NOT NULL,
    expected_minor BIGINT NOT NULL,
    counted_minor BIGINT NOT NULL,
    PRIMARY KEY (terminal, shift)
);

CREATE INDEX shift_closes_by_day ON shift_closes (store, day);

CREATE TABLE projection_backfills (
    name TEXT PRIMARY KEY,
    done_ms BIGINT NOT NULL
);
