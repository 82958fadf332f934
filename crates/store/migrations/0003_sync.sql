-- Sync state: how far HQ has acknowledged each terminal's ledger, and each event's stock
-- movements kept per terminal and sequence so the node can add its own events after HQ's
-- watermark to HQ's stock figure.
CREATE TABLE outbox (
    terminal TEXT PRIMARY KEY,
    acked_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE local_moves (
    terminal TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sku TEXT NOT NULL,
    hlc_wall INTEGER NOT NULL,
    hlc_counter INTEGER NOT NULL,
    delta INTEGER,
    counted INTEGER,
    PRIMARY KEY (sku, terminal, seq)
) STRICT;
