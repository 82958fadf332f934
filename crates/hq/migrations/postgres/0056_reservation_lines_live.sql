-- What a store has reserved of a SKU is read on every reservation and availability read: each
-- line carries its reservation's location and until when it holds (its expiry while active,
-- for ever while it holds an order, 0 once ended), so the sum is read from the lines alone.
ALTER TABLE reservation_lines ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE reservation_lines ADD COLUMN live_until_ms BIGINT NOT NULL DEFAULT 0;
UPDATE reservation_lines SET
    location = (SELECT r.location FROM reservations r WHERE r.id = reservation_lines.reservation),
    live_until_ms = (SELECT CASE WHEN r.state = 'active' THEN r.expires_ms
                                 WHEN r.state = 'ordered' THEN 9223372036854775807 ELSE 0 END
                     FROM reservations r WHERE r.id = reservation_lines.reservation);
CREATE INDEX reservation_lines_live ON reservation_lines (sku, live_until_ms);
