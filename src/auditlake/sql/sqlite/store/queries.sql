-- name: insert_index
INSERT INTO event_index (seq, tenant, action, occurred_us, actor_id, actor_type, outcome, source)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_target
INSERT INTO event_targets (seq, tenant, target_id, target_type) VALUES (?, ?, ?, ?);

-- name: insert_text
INSERT INTO events_text (rowid, words) VALUES (?, ?);

-- name: text_reindex
SELECT next_seq, last_seq FROM text_reindex;

-- name: text_reindex_moved
UPDATE text_reindex SET next_seq = ?;

-- name: text_reindex_done
DELETE FROM text_reindex;

-- name: get_offset
SELECT seq FROM consumer_offsets WHERE consumer = ?;

-- name: set_offset
INSERT INTO consumer_offsets (consumer, seq) VALUES (?, ?)
ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq;

-- name: get_event
SELECT body FROM journal.events WHERE tenant = ? AND id = ?;

-- name: tenants
-- The store's tenants, one index seek each (a skip scan of the tenant index).
WITH RECURSIVE t (tenant) AS (
    SELECT min(tenant) FROM event_index
    UNION ALL
    SELECT (SELECT min(tenant) FROM event_index WHERE tenant > t.tenant) FROM t
    WHERE t.tenant IS NOT NULL
)
SELECT tenant FROM t WHERE tenant IS NOT NULL;

-- name: expired
-- Events of a tenant that retention may remove: older than the cutoff, up to
-- the bound (archived and indexed), and not kept on purpose.
SELECT e.seq, j.body FROM event_index AS e INDEXED BY event_index_tenant_time
JOIN journal.events AS j ON j.seq = e.seq
WHERE e.tenant = ? AND e.occurred_us < ? AND e.seq <= ?
  AND e.seq NOT IN (SELECT seq FROM journal.kept_until WHERE until_us > ?)
LIMIT ?;

-- name: delete_target
DELETE FROM event_targets WHERE tenant = ? AND target_id = ? AND seq = ?;

-- name: delete_index
DELETE FROM event_index WHERE seq = ?;

-- name: delete_journal
DELETE FROM journal.events WHERE seq = ?;

-- name: delete_kept
DELETE FROM journal.kept_until WHERE seq = ?;
