-- People who use the back office, and the append-only audit log of every change (ADR 0004).
CREATE TABLE users (
    -- The sign-in name, lower case.
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    -- The stores a store manager runs, comma-separated; empty for every other role.
    stores TEXT NOT NULL DEFAULT '',
    -- argon2id, PHC string.
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    disabled_ms BIGINT,
    failed_sign_ins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    -- `user:NAME`, `key:ID`, `store:ID` or `cli` (a command run on the HQ machine).
    actor TEXT NOT NULL,
    -- Where the request came from (an address), when it came over the network.
    source TEXT,
    action TEXT NOT NULL,
    target TEXT,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at_ms);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
