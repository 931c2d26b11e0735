-- name: insert_event
INSERT INTO events (seq, tenant, id, occurred_us, received_us, body) VALUES (?, ?, ?, ?, ?, ?);

-- name: events_after
SELECT seq, occurred_us, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: insert_index
INSERT INTO event_index (seq, tenant, action, occurred_us, actor_id, actor_type, outcome, source)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: get_offset
SELECT seq FROM consumer_offsets WHERE consumer = ?;

-- name: set_offset
INSERT INTO consumer_offsets (consumer, seq) VALUES (?, ?)
ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq;

-- name: insert_target
INSERT INTO event_targets (seq, tenant, target_id, target_type) VALUES (?, ?, ?, ?);

-- name: insert_text
INSERT INTO events_text (rowid, words) VALUES (?, ?);

-- name: last_seq
SELECT coalesce(max(seq), 0) FROM events;

-- name: get_event
SELECT body FROM events WHERE tenant = ? AND id = ?;

-- name: insert_key
INSERT INTO api_keys (key_id, tenant, scopes, secret_hash, name, created_at)
VALUES (?, ?, ?, ?, ?, ?);

-- name: get_key
SELECT key_id, tenant, scopes, secret_hash, name, created_at, revoked_at
FROM api_keys WHERE key_id = ?;

-- name: list_keys
SELECT key_id, tenant, scopes, secret_hash, name, created_at, revoked_at
FROM api_keys ORDER BY created_at, key_id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL;
