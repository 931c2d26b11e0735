-- Dead letters take the shape every owner shares (sqlite_dead_letters): a
-- poller's letter has no journal position. Letters kept before items had a
-- key (0002) are keyed by their old id.
CREATE TABLE dead_letters_shared (
    owner       TEXT    NOT NULL,
    item_key    TEXT    NOT NULL,
    position    INTEGER,
    reason      TEXT    NOT NULL,
    item        BLOB,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (owner, item_key)
);

INSERT INTO dead_letters_shared (owner, item_key, position, reason, item, recorded_at)
SELECT source, coalesce(item_key, 'id:' || id), NULL, reason, item, recorded_at
FROM dead_letters ORDER BY id;

DROP TABLE dead_letters;
ALTER TABLE dead_letters_shared RENAME TO dead_letters;
CREATE INDEX dead_letters_owner_position ON dead_letters (owner, position);
