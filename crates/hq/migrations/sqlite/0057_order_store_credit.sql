-- What a store gave as store credit for goods of an online order brought back to its till,
-- in minor units: the shop refunds only the rest of what came back.
ALTER TABLE orders ADD COLUMN credited_minor BIGINT NOT NULL DEFAULT 0;
