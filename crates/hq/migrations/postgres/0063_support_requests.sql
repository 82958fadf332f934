-- Remote support (`POST /v1/stores/{id}/support`, the `support` role): what was asked of a
-- store node (a diagnostics bundle, a re-sync, a configuration profile: `profile`, JSON), by
-- whom and why; when the node fetched it and what it answered.
CREATE TABLE support_requests (
    id BIGSERIAL PRIMARY KEY,
    store TEXT NOT NULL REFERENCES stores (id),
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    profile TEXT,
    asked_by TEXT NOT NULL,
    asked_ms BIGINT NOT NULL,
    fetched_ms BIGINT,
    answered_ms BIGINT,
    done BIGINT,
    result TEXT
);

CREATE INDEX support_requests_by_store ON support_requests (store, id);
