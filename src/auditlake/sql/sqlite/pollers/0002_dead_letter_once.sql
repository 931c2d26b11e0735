-- An item that cannot be mapped comes back with every poll whose window
-- still covers it: keep it once per source.
ALTER TABLE dead_letters ADD COLUMN item_key TEXT;

CREATE UNIQUE INDEX dead_letters_source_item ON dead_letters (source, item_key);
