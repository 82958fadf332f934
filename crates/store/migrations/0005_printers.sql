-- The receipt printer of each till: raw TCP (`tcp:HOST:PORT`) or a device file, and its paper.
CREATE TABLE printers (
    terminal TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    paper TEXT NOT NULL CHECK (paper IN ('58', '80'))
) STRICT;
ALTER TABLE receipts ADD COLUMN printed INTEGER NOT NULL DEFAULT 0;
