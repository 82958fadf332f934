-- People signed in to the back office: HQ keeps the SHA-256 of the token in the session cookie,
-- and the CSRF token that every state-changing request of the session must send back.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    ended_ms BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
