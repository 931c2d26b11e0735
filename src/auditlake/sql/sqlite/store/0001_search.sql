-- The search index over the journal, written by the recorder. It is derived
-- data: the recorder's position lives in the same file (consumer_offsets), so
-- after a crash it resumes exactly where its last transaction ended, and a
-- lost store can be rebuilt from the journal.
--
-- Every SQLite index ends with the rowid, so (tenant, occurred_us) sorts by
-- (tenant, occurred_us, seq): the keyset the search cursor pages over.
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

-- Full-text index for `q`; contentless (the text lives in the journal).
CREATE VIRTUAL TABLE events_text USING fts5 (
    words, content = '', detail = none, tokenize = 'unicode61 remove_diacritics 2'
);

-- The last journal seq each consumer has processed, written in the same
-- transaction as that consumer's output.
CREATE TABLE consumer_offsets (
    consumer TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
);
