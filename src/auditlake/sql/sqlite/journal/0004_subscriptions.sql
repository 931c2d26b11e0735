-- The committed position of each named consumer of the journal (its
-- subscription): every event up to `position` has the consumer's output.
-- Kept beside the events, as a JetStream stream keeps its durable consumers.
CREATE TABLE subscriptions (
    consumer     TEXT    PRIMARY KEY,
    position     INTEGER NOT NULL,
    committed_at TEXT    NOT NULL
) WITHOUT ROWID;
