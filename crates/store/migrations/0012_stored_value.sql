-- Gift card and store credit movements of this node's events, per terminal and sequence, so the
-- node can add its own movements after HQ's watermarks to HQ's balance and count the
-- redemptions HQ has not acknowledged yet; and the store's offline liability cap.
CREATE TABLE stored_value_moves (
    terminal TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    delta INTEGER NOT NULL,
    PRIMARY KEY (terminal, seq, account, kind)
) STRICT;

CREATE INDEX stored_value_moves_account ON stored_value_moves (account);
CREATE INDEX stored_value_moves_event ON stored_value_moves (event_id);

CREATE TABLE stored_value_settings (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    offline_cap TEXT NOT NULL
) STRICT;
