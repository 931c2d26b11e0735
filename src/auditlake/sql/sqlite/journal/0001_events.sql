-- The journal: every accepted event, in acceptance order (`seq`), exactly
-- once per (tenant, id). A request is acknowledged once its rows are here.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    occurred_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL,
    body        BLOB    NOT NULL
);

CREATE UNIQUE INDEX events_tenant_id ON events (tenant, id);
