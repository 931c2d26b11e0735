-- name: get_cursor
SELECT seq FROM cursors WHERE consumer = ?;

-- name: insert_dead_letter
INSERT INTO dead_letters (consumer, seq, reason, recorded_at) VALUES (?, ?, ?, ?)
ON CONFLICT (consumer, seq) DO UPDATE SET reason = excluded.reason;

-- name: dead_letters
SELECT seq, reason, recorded_at FROM dead_letters WHERE consumer = ? ORDER BY seq;

-- name: first_dead_letter
SELECT min(seq) FROM dead_letters WHERE consumer = ?;

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE consumer = ? AND seq = ?;
