-- Stock movements are looked up and inserted only by their primary key; keeping the table
-- itself in key order (WITHOUT ROWID) saves one B-tree insert per movement during ingest.
CREATE TABLE stock_moves_by_key (
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    hlc_wall INTEGER NOT NULL,
    hlc_counter INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    delta INTEGER NOT NULL,
    PRIMARY KEY (location, sku, hlc_wall, hlc_counter, event_id)
) WITHOUT ROWID;

INSERT INTO stock_moves_by_key SELECT location, sku, hlc_wall, hlc_counter, event_id, delta FROM stock_moves;
DROP TABLE stock_moves;
ALTER TABLE stock_moves_by_key RENAME TO stock_moves;
