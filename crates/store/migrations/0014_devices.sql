-- Unattended devices (a scale, a self-checkout) that write at one till without a member signed
-- in. Only a SHA-256 hash of each credential is kept; a revoked device keeps its row so that its
-- id is never reused for another device.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    terminal TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
) STRICT;
