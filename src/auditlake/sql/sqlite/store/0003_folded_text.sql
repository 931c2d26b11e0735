-- The text index holds the folded words of each event (core.words: NFKC,
-- case folded, diacritics removed from Latin, Greek and Cyrillic letters
-- only), so a search finds canonically equivalent text however it was typed
-- or stored, and a query is folded by the same function.
-- The `ascii` tokenizer splits at ASCII characters other than letters and
-- digits, lowercases ASCII letters, and takes every non-ASCII character as
-- part of a word: text with non-ASCII is given to it as folded words joined
-- by spaces, ASCII text as it is (`core.words.index_text`).
DROP TABLE events_text;

CREATE VIRTUAL TABLE events_text USING fts5 (
    words, content = '', detail = none, tokenize = 'ascii'
);

-- The events indexed before this migration get their words again, read from
-- the journal in batches by the recorder (sqlite_recorder.reindex_text); the
-- row is removed when it is done. Until then `q` misses those older events.
CREATE TABLE text_reindex (
    next_seq INTEGER NOT NULL,  -- the next journal seq to index again
    last_seq INTEGER NOT NULL   -- the last one (the newest indexed when migrated)
);

INSERT INTO text_reindex (next_seq, last_seq)
SELECT min(seq), max(seq) FROM event_index HAVING count(*) > 0;
