-- name: insert_index
INSERT INTO event_index (seq, tenant, action, occurred_us, actor_id, actor_type, outcome, source)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_target
INSERT INTO event_targets (seq, tenant, target_id, target_type) VALUES (?, ?, ?, ?);

-- name: insert_text
INSERT INTO events_text (rowid, words) VALUES (?, ?);

-- name: get_offset
SELECT seq FROM consumer_offsets WHERE consumer = ?;

-- name: set_offset
INSERT INTO consumer_offsets (consumer, seq) VALUES (?, ?)
ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq;

-- name: get_event
SELECT body FROM journal.events WHERE tenant = ? AND id = ?;

-- name: insert_chainguard_pull
INSERT INTO chainguard_registry_pull_v1 (
    seq, tenant, event_id, occurred_us, actor_subject, actor_act, repository, repo_id, tag,
    digest, method, type, "when", location, user_agent, remote_address, error_status,
    error_code, error_message
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
