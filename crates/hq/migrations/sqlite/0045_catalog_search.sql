-- Catalog search: every variant's names and SKU folded to lower case, and its identifiers, kept
-- from the reference change log in order of version (`search_cursor`: the last variant row
-- indexed), so that the back office and the API search 300,000 variants without reading their
-- JSON.
CREATE TABLE catalog_search (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    product_name TEXT NOT NULL,
    name TEXT NOT NULL,
    folded TEXT NOT NULL,
    identifiers TEXT NOT NULL
);

CREATE TABLE catalog_identifiers (
    identifier TEXT NOT NULL,
    sku TEXT NOT NULL,
    PRIMARY KEY (identifier, sku)
);
CREATE INDEX catalog_identifiers_by_sku ON catalog_identifiers (sku);

CREATE TABLE search_cursor (
    singleton INTEGER PRIMARY KEY,
    version BIGINT NOT NULL,
    key TEXT NOT NULL
);
INSERT INTO search_cursor (singleton, version, key) VALUES (1, 0, '');
