-- Staff (reference data: from a seed or HQ; PINs only as salted and peppered argon2 hashes),
-- wrong-PIN counts per member and till, and shifts as projected from the ledger.
CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    pin_hash TEXT NOT NULL
) STRICT;

CREATE TABLE pin_attempts (
    staff TEXT NOT NULL,
    terminal TEXT NOT NULL,
    failures INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (staff, terminal)
) STRICT;

CREATE TABLE shifts (
    id TEXT PRIMARY KEY,
    terminal TEXT NOT NULL,
    staff TEXT NOT NULL,
    currency TEXT NOT NULL,
    float_minor INTEGER NOT NULL,
    opened_seq INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    closed_seq INTEGER,
    expected_minor INTEGER,
    counted_minor INTEGER
) STRICT;

CREATE UNIQUE INDEX shifts_one_open_per_terminal ON shifts (terminal) WHERE closed_seq IS NULL;
