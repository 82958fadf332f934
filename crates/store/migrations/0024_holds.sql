-- Holds for customers placed at this store's tills: HQ keeps each (a reservation of channel
-- `store`); the node keeps what the tills need to list and release them — who, what, until
-- when, and whether released.
CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    lines TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    terminal TEXT NOT NULL,
    staff TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    released_ms INTEGER
);
