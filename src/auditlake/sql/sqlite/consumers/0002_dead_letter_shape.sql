-- Dead letters take the shape every owner shares (sqlite_dead_letters):
-- the item is kept with the letter; letters of earlier releases have none
-- (NULL), and a replay reads their event from the journal.
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
SELECT consumer, CAST(seq AS TEXT), seq, reason, NULL, recorded_at FROM dead_letters;

DROP TABLE dead_letters;
ALTER TABLE dead_letters_shared RENAME TO dead_letters;
CREATE INDEX dead_letters_owner_position ON dead_letters (owner, position);
