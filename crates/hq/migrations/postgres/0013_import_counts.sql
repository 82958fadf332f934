-- Opening stock counts committed with a catalog import batch (`kassa catalog import`): the
-- quantity the legacy system held per Kassa location and SKU. The count is applied to
-- `stock_levels` like a till's count, stamped with the batch's clock (its commit instant, its
-- reference version and its id); this table keeps what the batch counted so that running the
-- same import again changes nothing and `kassa catalog rollback` can withdraw the count.
CREATE TABLE import_batch_counts (
    batch TEXT NOT NULL REFERENCES import_batches (id),
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    counted BIGINT NOT NULL,
    provenance TEXT,
    PRIMARY KEY (batch, location, sku)
);

CREATE INDEX import_batch_counts_by_level ON import_batch_counts (location, sku);
