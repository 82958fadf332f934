-- What a store node last said of each till's ledger (its last sequence, on each reference
-- pull), and the sequences HQ knows a till wrote but will never receive: a node that comes back
-- with less than it said before (its PC replaced, restored from an older backup) lost what lay
-- between, beyond what HQ holds. Its new events take those numbers again; this says so.
ALTER TABLE terminals ADD COLUMN reported_seq BIGINT;

CREATE TABLE lost_sequences (
    terminal_id TEXT NOT NULL REFERENCES terminals (id),
    from_seq BIGINT NOT NULL,
    to_seq BIGINT NOT NULL,
    detected_ms BIGINT NOT NULL,
    PRIMARY KEY (terminal_id, from_seq, detected_ms)
);
