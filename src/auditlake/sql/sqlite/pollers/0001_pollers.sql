-- Pollers' state: where each source's next poll starts, and the vendor items
-- that could not be mapped (kept with the reason, for inspection and replay).
CREATE TABLE checkpoints (
    source        TEXT    PRIMARY KEY,
    checkpoint_us INTEGER NOT NULL,
    updated_at    TEXT    NOT NULL
);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    item        BLOB    NOT NULL,
    recorded_at TEXT    NOT NULL
);

CREATE INDEX dead_letters_source ON dead_letters (source, id);
