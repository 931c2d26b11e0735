-- name: get_checkpoint
SELECT checkpoint_us FROM checkpoints WHERE source = ?;

-- name: set_checkpoint
INSERT INTO checkpoints (source, checkpoint_us, updated_at) VALUES (?, ?, ?)
ON CONFLICT (source) DO UPDATE SET
    checkpoint_us = max(checkpoint_us, excluded.checkpoint_us),
    updated_at = excluded.updated_at;

-- name: insert_dead_letter
INSERT INTO dead_letters (source, reason, item, recorded_at, item_key) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (source, item_key) DO NOTHING;

-- name: dead_letters
SELECT id, reason, item, recorded_at FROM dead_letters WHERE source = ? ORDER BY id;
