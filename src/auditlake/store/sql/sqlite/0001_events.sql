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

-- The search index, written by the recorder in large batches behind the
-- journal (so acknowledgements never wait for index maintenance). Every
-- SQLite index ends with the rowid, so (tenant, occurred_us) sorts by
-- (tenant, occurred_us, seq): the keyset the cursor pages over.
CREATE TABLE event_index (
    seq         INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    occurred_us INTEGER NOT NULL,
    actor_id    TEXT,
    actor_type  TEXT,
    outcome     TEXT    NOT NULL,
    source      TEXT    NOT NULL
);

CREATE INDEX event_index_tenant_time ON event_index (tenant, occurred_us);
CREATE INDEX event_index_tenant_action_time ON event_index (tenant, action, occurred_us);
CREATE INDEX event_index_tenant_actor_time ON event_index (tenant, actor_id, occurred_us);

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

-- How far each consumer of the journal has processed it (`seq` is the last
-- event done), written in the same transaction as the consumer's output,
-- so a crash never skips or repeats an event.
CREATE TABLE consumer_offsets (
    consumer TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
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
