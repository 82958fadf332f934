-- A store credential replaced by the store itself (`POST /v1/sync/credential`) keeps working
-- until `previous_until_ms`, so requests already on their way with it, and a node that has
-- not yet read its new one, are not refused.
ALTER TABLE stores ADD COLUMN previous_token_hash BLOB;
ALTER TABLE stores ADD COLUMN previous_until_ms BIGINT;
