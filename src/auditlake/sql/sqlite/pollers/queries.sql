-- name: get_checkpoint
SELECT checkpoint_us FROM checkpoints WHERE source = ?;

-- name: set_checkpoint
INSERT INTO checkpoints (source, checkpoint_us, updated_at) VALUES (?, ?, ?)
ON CONFLICT (source) DO UPDATE SET
    checkpoint_us = max(checkpoint_us, excluded.checkpoint_us),
    updated_at = excluded.updated_at;
