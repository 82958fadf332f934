-- Store backups the nodes send (`kassa store run --backup-to-hq`), encrypted at the store to
-- the chain's recovery key: HQ keeps the files in its store backups directory (`kassa hq run
-- --store-backups DIR`) and here what it holds of each. `received` grows piece by piece; a
-- backup is whole when `completed_ms` is set. At most one upload per store is incomplete.
CREATE TABLE store_backups (
    store TEXT NOT NULL REFERENCES stores (id),
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    received BIGINT NOT NULL,
    started_ms BIGINT NOT NULL,
    completed_ms BIGINT,
    PRIMARY KEY (store, name)
);
