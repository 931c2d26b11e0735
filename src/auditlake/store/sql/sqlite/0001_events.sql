-- The embedded journal and store share this table: `seq` is the journal
-- order, and the indexes serve the searches of the query API. Every SQLite
-- index ends with the rowid, so (tenant, occurred_us) sorts by
-- (tenant, occurred_us, seq), which is the keyset the cursor pages over.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    occurred_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL,
    actor_id    TEXT,
    actor_type  TEXT,
    outcome     TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    body        BLOB    NOT NULL
);

CREATE UNIQUE INDEX events_tenant_id ON events (tenant, id);
CREATE INDEX events_tenant_time ON events (tenant, occurred_us);
CREATE INDEX events_tenant_action_time ON events (tenant, action, occurred_us);
CREATE INDEX events_tenant_actor_time ON events (tenant, actor_id, occurred_us);

-- One row per target, so target_id / target_type filters use an index.
CREATE TABLE event_targets (
    seq         INTEGER NOT NULL,
    tenant      TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    target_type TEXT
);

CREATE INDEX event_targets_tenant_id ON event_targets (tenant, target_id, seq);
CREATE INDEX event_targets_tenant_type ON event_targets (tenant, target_type, seq);

-- Full-text index for `q`; contentless (the text lives in `events.body`).
CREATE VIRTUAL TABLE events_text USING fts5 (
    words, content = '', detail = none, tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
