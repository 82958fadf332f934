-- A till revoked at HQ (stolen, lost): HQ keeps what it holds of its ledger up to
-- `revoked_after_seq` and parks every batch beyond it, with who revoked it, when and why.
ALTER TABLE terminals ADD COLUMN revoked_after_seq BIGINT;
ALTER TABLE terminals ADD COLUMN revoked_ms BIGINT;
ALTER TABLE terminals ADD COLUMN revoked_by TEXT;
ALTER TABLE terminals ADD COLUMN revoked_reason TEXT;
