-- Card requests to the payment terminal: each is written here, durably, before it leaves, so a
-- restart knows which outcomes to ask the terminal for. Only what passed the card-number
-- whitelist is stored (references, masked PAN, token): never a card number.
CREATE TABLE card_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id TEXT NOT NULL UNIQUE,
    op TEXT NOT NULL,
    outcome TEXT
) STRICT;
