-- The store node's ledger: append-only events, one gap-free sequence and hash chain per terminal.
CREATE TABLE node (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    store_id TEXT NOT NULL
) STRICT;

CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    public_key BLOB NOT NULL
) STRICT;

CREATE TABLE events (
    terminal TEXT NOT NULL REFERENCES terminals (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    id TEXT NOT NULL UNIQUE,
    hlc_wall INTEGER NOT NULL,
    hlc_counter INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (terminal, seq)
) STRICT;

CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'ledger events are append-only: UPDATE refused');
END;

CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'ledger events are append-only: DELETE refused');
END;
