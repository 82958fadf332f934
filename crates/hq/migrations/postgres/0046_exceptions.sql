-- The exceptions inbox: what people said of an exception (negative stock, a parked batch, a
-- card declined after an offline approval, a silent till), by its kind and key. An exception
-- without a row here is open.
CREATE TABLE exception_states (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT NOT NULL,
    by_actor TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
