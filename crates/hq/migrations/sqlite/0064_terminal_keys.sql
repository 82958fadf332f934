-- Every key a terminal has signed with, from the sequence it signs from: the key it was
-- registered with from 1, and each key a `KeyRotated` event of its chain named (announced in a
-- batch signed by the key before it) from the event after. A batch is verified with the key in
-- force at its first event; `terminals.public_key` is the newest.
CREATE TABLE terminal_keys (
    terminal_id TEXT NOT NULL REFERENCES terminals (id),
    from_seq BIGINT NOT NULL,
    public_key BLOB NOT NULL,
    rotated_ms BIGINT,
    PRIMARY KEY (terminal_id, from_seq)
);

INSERT INTO terminal_keys (terminal_id, from_seq, public_key)
SELECT id, 1, public_key FROM terminals;
