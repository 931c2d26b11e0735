-- The store on PostgreSQL: every event the recorder made searchable, as
-- typed columns for SQL and BI users, beside the JSON the journal accepted
-- (`body`, returned by get, search and export as it was stored: `inet` and
-- `jsonb` normalize what they hold, IPv6 case and key order).
--
-- `events` is range-partitioned by occurred_at; partitions are created ahead
-- of time by the store (daily or monthly), and `events_default` takes what
-- falls outside them. A unique index on a partitioned table must contain the
-- partition key, so exactly once by (tenant, id), whatever the timestamps,
-- is kept by `event_keys`, written in the same transaction as the events.
-- Names and ids compare byte by byte (COLLATE "C"), as in SQLite: equal for
-- equality, and an action prefix is a range that a btree index serves.
CREATE TABLE events (
    seq                bigint      NOT NULL,  -- the journal position
    tenant             text COLLATE "C" NOT NULL,
    id                 text COLLATE "C" NOT NULL,
    action             text COLLATE "C" NOT NULL,
    occurred_at        timestamptz NOT NULL,
    received_at        timestamptz NOT NULL,
    source             text        NOT NULL,
    caller             text        NOT NULL,
    outcome            text        NOT NULL,
    version            integer     NOT NULL,
    actor_id           text COLLATE "C",
    actor_type         text,
    actor_name         text,
    actor_email        text,
    actor_ip           inet,                   -- null when the value is not an IP
    actor_metadata     jsonb,
    context_location   text,
    context_ip         inet,                   -- null when the value is not an IP
    context_user_agent text,
    context_request_id text,
    error_code         text,
    error_message      text,
    targets            jsonb       NOT NULL,
    metadata           jsonb       NOT NULL,
    raw                jsonb,                  -- a vendor's own record, as it came
    words              tsvector    NOT NULL,   -- `q`: the folded words of core.words
    body               bytea       NOT NULL
) PARTITION BY RANGE (occurred_at);

CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Keyset pages run over (occurred_at, seq) within a tenant.
CREATE INDEX events_tenant_time ON events (tenant, occurred_at, seq);
CREATE INDEX events_tenant_action_time ON events (tenant, action, occurred_at, seq);
CREATE INDEX events_tenant_actor_time ON events (tenant, actor_id, occurred_at, seq);
CREATE INDEX events_words ON events USING gin (words);

CREATE TABLE event_keys (
    tenant      text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    seq         bigint      NOT NULL,
    occurred_at timestamptz NOT NULL,  -- where the event's row is (partition pruning)
    PRIMARY KEY (tenant, id)
);

-- One row per target, so target_id / target_type filters use an index and
-- page in (occurred_at, seq) order without reading the events.
CREATE TABLE event_targets (
    tenant      text COLLATE "C" NOT NULL,
    target_id   text COLLATE "C" NOT NULL,
    target_type text COLLATE "C",
    occurred_at timestamptz NOT NULL,
    seq         bigint      NOT NULL
);

CREATE INDEX event_targets_tenant_id ON event_targets (tenant, target_id, occurred_at, seq);
CREATE INDEX event_targets_tenant_type ON event_targets (tenant, target_type, occurred_at, seq);

-- The last journal position each consumer has written, in the transaction
-- of its output.
CREATE TABLE consumer_positions (
    consumer   text        PRIMARY KEY,
    position   bigint      NOT NULL,
    moved_at   timestamptz NOT NULL
);
