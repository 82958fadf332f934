-- Each till's payment terminal (Adyen Terminal API over the LAN): where it is, its POIID, the
-- shared key's identifier and version, the files holding the passphrase and the terminal's CA
-- (paths only: the secret stays in its file), and the offline limits in minor units.
CREATE TABLE payment_terminals (
    terminal TEXT PRIMARY KEY,
    addr TEXT NOT NULL,
    poi_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    passphrase_file TEXT NOT NULL,
    ca_file TEXT NOT NULL,
    offline_per_transaction INTEGER NOT NULL,
    offline_per_shift INTEGER NOT NULL,
    offline_outstanding INTEGER NOT NULL
) STRICT;

-- card_requests becomes a projection of the ledger's card events, per till; `used_by` is the
-- receipt of the sale whose card tender took the approved payment.
ALTER TABLE card_requests ADD COLUMN terminal TEXT;
ALTER TABLE card_requests ADD COLUMN used_by TEXT;
CREATE INDEX card_requests_by_terminal ON card_requests (terminal, seq);

-- Idempotency of POST /v1/card-payments: the client's key, the request's hash, and the
-- ServiceID the request went out under (its outcome is read from card_requests).
CREATE TABLE card_payment_keys (
    key TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    terminal TEXT NOT NULL,
    service_id TEXT NOT NULL
) STRICT;
