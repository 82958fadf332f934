-- The fleet page's figures per till and node: the clock reading of the oldest event a node's
-- tills hold that HQ has not acknowledged (with the count it already reports), and the bytes
-- each till's pushes brought per UTC day.
ALTER TABLE stores ADD COLUMN node_oldest_unsynced_ms BIGINT;

CREATE TABLE push_traffic (
    terminal TEXT NOT NULL,
    day TEXT NOT NULL,
    pushes BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (terminal, day)
);
