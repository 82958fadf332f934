-- The identity of this HQ's reference data change log: a random id made on first use. Stores
-- record it with their reference version, which means something only within this log.
CREATE TABLE ref_log (
    singleton INTEGER PRIMARY KEY,
    id TEXT NOT NULL
);
