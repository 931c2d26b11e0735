-- name: insert_event
INSERT INTO events (seq, tenant, id, occurred_us, received_us, body) VALUES (?, ?, ?, ?, ?, ?);

-- name: cache_fingerprint
UPDATE events SET fingerprint = ? WHERE seq = ?;

-- name: last_seq
SELECT coalesce(max(seq), 0) FROM events;

-- name: events_after
SELECT seq, occurred_us, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: records_after
SELECT seq, received_us, occurred_us, tenant, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: records_by_seq
SELECT seq, received_us, occurred_us, tenant, body FROM events WHERE seq = ?;

-- name: keep_until
INSERT INTO kept_until (seq, until_us) SELECT seq, ? FROM events WHERE tenant = ? AND id = ?
ON CONFLICT (seq) DO UPDATE SET until_us = max(until_us, excluded.until_us);

-- name: first_record_after
SELECT seq, received_us FROM events WHERE seq > ? ORDER BY seq LIMIT 1;

-- name: subscription_position
SELECT position FROM subscriptions WHERE consumer = ?;

-- name: commit_subscription
INSERT INTO subscriptions (consumer, position, committed_at) VALUES (?, ?, ?)
ON CONFLICT (consumer) DO UPDATE SET position = max(position, excluded.position),
    committed_at = excluded.committed_at;
