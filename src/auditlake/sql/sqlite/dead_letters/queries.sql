-- The statements of every `dead_letters` table (consumers and pollers
-- databases); the table itself is created by each database's migrations.

-- name: insert
INSERT INTO dead_letters (owner, item_key, position, reason, item, recorded_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (owner, item_key) DO UPDATE SET reason = excluded.reason, item = excluded.item;

-- name: of_owner
SELECT item_key, position, reason, recorded_at, item FROM dead_letters
WHERE owner = ? ORDER BY coalesce(position, -1), rowid;

-- name: first_position
SELECT min(position) FROM dead_letters WHERE owner = ?;

-- name: delete
DELETE FROM dead_letters WHERE owner = ? AND item_key = ?;
