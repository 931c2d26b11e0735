-- Chainguard registry pull events as a typed table, with the columns of
-- Chainguard's own BigQuery table (dataset cloudevents_pull_event_recorder,
-- table dev_chainguard_registry_pull_v1). Filled by the recorder from the
-- CloudEvent kept in each event's `raw`; derived data like the rest of the
-- store. `actor_act` holds the `actor.act` record as JSON.
CREATE TABLE IF NOT EXISTS chainguard_registry_pull_v1 (
    seq            INTEGER PRIMARY KEY,
    tenant         TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    occurred_us    INTEGER NOT NULL,
    actor_subject  TEXT,
    actor_act      TEXT,
    repository     TEXT,
    repo_id        TEXT,
    tag            TEXT,
    digest         TEXT,
    method         TEXT,
    type           TEXT,
    "when"         TEXT,
    location       TEXT,
    user_agent     TEXT,
    remote_address TEXT,
    error_status   INTEGER,
    error_code     TEXT,
    error_message  TEXT
);

CREATE INDEX IF NOT EXISTS chainguard_registry_pull_v1_tenant_time
    ON chainguard_registry_pull_v1 (tenant, occurred_us);
