-- Orders from the web routed to this store by HQ (its reference change log's `order`
-- entities), with what this store's tills did with them before HQ confirmed it: the local
-- status and the quantities picked and brought back, written in the transaction of the
-- OrderStep event.
CREATE TABLE web_orders (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    local_status TEXT,
    picked TEXT,
    returned TEXT
);
