-- Where the node's reference data comes from. No row: a local seed file (or nothing yet). A row:
-- HQ's change log `hq_log`, whose versions the node's reference version counts in; `pin_pepper`
-- is the identity of the pepper HQ keyed the published PIN hashes with.
CREATE TABLE reference_source (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    hq_log TEXT NOT NULL,
    hq_url TEXT NOT NULL,
    pin_pepper TEXT
) STRICT;
