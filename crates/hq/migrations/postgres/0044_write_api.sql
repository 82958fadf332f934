-- The write API. A request sent again with the same `Idempotency-Key` by the same caller is
-- answered from here instead of being applied twice (a different request under the key is
-- refused).
CREATE TABLE idempotency_keys (
    actor TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (actor, key)
);

-- States of entities the write API wrote, by version (the state before its first write
-- included), so that a stale write can be told which fields changed since the version it read.
CREATE TABLE ref_revisions (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    payload TEXT,
    PRIMARY KEY (kind, key, version)
);

-- Price changes scheduled through the API. The entries of a SKU in a book are its base (the
-- entries before its first change) with every change not cancelled applied in order of its
-- instant; cancelling a change writes the base with the others. A publish or import that
-- rewrites the entries since replaces the changes pending on them (`replaced_version`).
CREATE TABLE price_bases (
    book TEXT NOT NULL,
    sku TEXT NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (book, sku)
);

CREATE TABLE price_changes (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    book TEXT NOT NULL,
    -- A store's own change (its store book); NULL for a chain book.
    store TEXT,
    currency TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    effective_ms BIGINT NOT NULL,
    -- The local date and time it was asked for, when it was given in the stores' time zone.
    effective_local TEXT,
    time_zone TEXT,
    -- The change log version that carries it to the stores.
    version BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    cancelled_ms BIGINT,
    cancelled_by TEXT,
    replaced_version BIGINT
);
CREATE INDEX price_changes_by_sku ON price_changes (sku, book);
CREATE INDEX price_changes_by_effective ON price_changes (effective_ms);

-- The reference version each store last pulled, so HQ can say which stores hold a change.
ALTER TABLE stores ADD COLUMN reference_version BIGINT;
ALTER TABLE stores ADD COLUMN reference_pulled_ms BIGINT;
