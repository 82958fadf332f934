-- A refusal a store repeats is recorded once: the body's digest identifies a batch sent again,
-- `repeats` and `last_ms` say how often and when it was last refused.
ALTER TABLE parked ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE parked ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
ALTER TABLE parked ADD COLUMN last_ms INTEGER NOT NULL DEFAULT 0;
UPDATE parked SET last_ms = received_ms;
-- Parking looks up a store's and a terminal's records on every refusal.
CREATE INDEX parked_by_terminal ON parked (store, terminal);
