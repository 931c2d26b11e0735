-- Events that retention must leave in the store until a given time, whatever
-- their age: the ones `auditlake rehydrate` brought back from the lake.
CREATE TABLE kept_until (
    seq      INTEGER PRIMARY KEY,
    until_us INTEGER NOT NULL
);
