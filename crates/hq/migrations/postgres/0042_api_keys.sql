-- Keys other systems use HQ's API with: each with its scopes, kept as the SHA-256 of its secret
-- (the secret is shown once), rotatable with an overlap (the old key expires later), revocable.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Space-separated, e.g. `catalog:read reports:read`.
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    -- Who made it, as the audit log names them.
    created_by TEXT NOT NULL,
    expires_ms BIGINT,
    revoked_ms BIGINT
);
