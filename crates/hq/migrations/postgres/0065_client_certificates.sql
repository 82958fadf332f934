-- Mutual TLS per store: when set, every request made with the store's credential must come
-- over a TLS connection on which the store node presented its own client certificate (issued
-- at enrolment under the chain's CA, `kassa-store:<id>`).
ALTER TABLE stores ADD COLUMN client_cert_required BIGINT NOT NULL DEFAULT 0;
