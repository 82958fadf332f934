-- One-time enrolment codes for store nodes (`kassa hq store enrol`): HQ keeps the SHA-256 of
-- each code's secret, never the secret. A code works once, until it expires; a newer code for
-- the same store deletes an unused older one.
CREATE TABLE enrolments (
    secret_hash TEXT PRIMARY KEY,
    store TEXT NOT NULL REFERENCES stores (id),
    url TEXT NOT NULL,
    -- The chain's CA (PEM) the code's pin names, handed to the node that proves it holds the
    -- code; NULL for a plain-HTTP HQ.
    ca_pem TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    created_by TEXT NOT NULL
);

CREATE INDEX enrolments_by_store ON enrolments (store);
