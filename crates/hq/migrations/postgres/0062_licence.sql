-- The chain's licence (`kassa hq licence install`): one row. `file_text` is the signed file as
-- installed (its signature was checked against a trusted vendor key then), `terms` the signed
-- terms' JSON; `over_since_ms` is when the chain went over one of the licence's limits, NULL
-- while within them: it starts the grace period. A licence is replaced, never removed.
CREATE TABLE licence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    customer TEXT NOT NULL,
    terms TEXT NOT NULL,
    file_text TEXT NOT NULL,
    installed_ms BIGINT NOT NULL,
    installed_by TEXT NOT NULL,
    over_since_ms BIGINT
);
