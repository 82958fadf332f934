-- Remote support (`POST /v1/stores/{id}/support`, the `support` role): what was asked of a
-- store node, by whom and why; when the node fetched it on its sync cycle and what it answered
-- (a diagnostics bundle, or what a re-sync did).
CREATE TABLE support_requests (
    id BIGSERIAL PRIMARY KEY,
    store TEXT NOT NULL REFERENCES stores (id),
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    asked_ms BIGINT NOT NULL,
    fetched_ms BIGINT,
    answered_ms BIGINT,
    done BIGINT,
    result TEXT
);

CREATE INDEX support_requests_by_store ON support_requests (store, id);
