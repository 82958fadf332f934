-- Webhooks: subscriptions per API key, and a transactional outbox. An event is written in the
-- transaction of the change it tells of, with one delivery per subscription that wants it;
-- a delivery is attempted until it is answered 2xx or 72 hours have passed, each attempt
-- logged. Resources number their events (webhook_sequences) so a receiver can order them.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until_ms BIGINT,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    removed_ms BIGINT
);

CREATE TABLE webhook_sequences (
    resource TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    resource TEXT NOT NULL,
    seq BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL REFERENCES webhook_events (id),
    subscription TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    resource TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_ms BIGINT NOT NULL,
    lease_ms BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    done_ms BIGINT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_ms);
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (state, subscription, resource, id);

CREATE TABLE webhook_attempts (
    delivery BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    status BIGINT,
    error TEXT,
    elapsed_ms BIGINT NOT NULL
);

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery, at_ms);
