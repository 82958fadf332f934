-- Daily reconciliation kept, not only computed when asked: ingest marks each store-day its
-- events fall on as due (`reconcile_due`); once the day plus its grace has ended in the store's
-- zone, a background sweep reconciles it and keeps its differences (`reconciliation_findings`,
-- replaced each time), which the exceptions inbox lists. Late events mark the day due again;
-- `marks` counts the markings, so a sweep forgets a day only if none came while it reconciled.
CREATE TABLE reconcile_due (
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    marks BIGINT NOT NULL,
    PRIMARY KEY (store, day)
);

CREATE TABLE reconciliation_findings (
    store TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    terminal TEXT NOT NULL,
    shift TEXT NOT NULL,
    currency TEXT NOT NULL,
    expected TEXT NOT NULL,
    actual TEXT NOT NULL,
    difference TEXT NOT NULL,
    PRIMARY KEY (store, day, kind, terminal, shift)
);
