-- Catalog imports (`kassa catalog import`): each commit is one batch of reference entities,
-- published through the change log; the state of each entity before and after the batch is
-- kept so that `kassa catalog rollback` can undo exactly that batch as a new change.
CREATE TABLE import_batches (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    rolled_back_version INTEGER
);

CREATE TABLE import_batch_entities (
    batch TEXT NOT NULL REFERENCES import_batches (id),
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    before_payload TEXT,
    after_payload TEXT,
    provenance TEXT,
    PRIMARY KEY (batch, kind, key)
);
