-- In-store sales returned through the web shop (HQ's `web-return` entities): the lines taken
-- back, which this store's tills may no longer return, and — at the store the goods are sent
-- back to — whether they arrived (`local_status`, written in the transaction of the
-- ReturnReceived event).
CREATE TABLE web_returns (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    sale_receipt TEXT NOT NULL,
    receive_at TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    local_status TEXT
) STRICT;

CREATE TABLE web_return_lines (
    web_return TEXT NOT NULL,
    sale_receipt TEXT NOT NULL,
    line INTEGER NOT NULL,
    milli INTEGER NOT NULL,
    PRIMARY KEY (web_return, line)
) STRICT;

CREATE INDEX web_return_lines_by_receipt ON web_return_lines (sale_receipt);
