-- The fingerprint of each event's caller-supplied content (16 bytes, see
-- `core.event.fingerprint`), compared when an event arrives under a stored
-- (tenant, id): the same content is a duplicate, other content a conflict.
-- NULL for rows written before this migration and for service-generated ids
-- (no other event can have one): the journal computes it from `body` when an
-- event arrives under such a key.
ALTER TABLE events ADD COLUMN fingerprint BLOB;
