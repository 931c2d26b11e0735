-- Journal consumers other than the recorder (the archiver, later forwarders):
-- where each has got to, and the events it could not process.
CREATE TABLE cursors (
    consumer   TEXT    PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE TABLE dead_letters (
    consumer    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (consumer, seq)
);
