-- The fingerprint of a stored event's caller-supplied content (16 bytes, see
-- `core.event.fingerprint`), compared when an event arrives under its
-- (tenant, id): the same content is a duplicate, other content a conflict.
-- A cache: NULL until an event first arrives again under the key (then the
-- journal computes it from `body` and keeps it here), so writing a new event
-- costs nothing more, and rows written before this migration need nothing.
ALTER TABLE events ADD COLUMN fingerprint BLOB;
