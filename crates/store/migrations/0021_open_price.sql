-- Open-price items (department keys): the cashier types the price at the till.
ALTER TABLE variants ADD COLUMN open_price INTEGER NOT NULL DEFAULT 0;
