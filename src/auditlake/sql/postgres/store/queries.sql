-- name: create_position
INSERT INTO consumer_positions (consumer, position, moved_at) VALUES (%s, 0, now())
ON CONFLICT (consumer) DO NOTHING;

-- name: lock_position
SELECT position FROM consumer_positions WHERE consumer = %s FOR UPDATE;

-- name: get_position
SELECT position FROM consumer_positions WHERE consumer = %s;

-- name: set_position
UPDATE consumer_positions SET position = %s, moved_at = now() WHERE consumer = %s;

-- name: create_incoming
CREATE TEMP TABLE IF NOT EXISTS incoming (
    seq bigint, tenant text COLLATE "C", id text COLLATE "C", action text COLLATE "C",
    occurred_at timestamptz, received_at timestamptz, source text, caller text, outcome text,
    version integer, actor_id text COLLATE "C", actor_type text, actor_name text,
    actor_email text, actor_ip inet, actor_metadata jsonb, context_location text,
    context_ip inet, context_user_agent text, context_request_id text, error_code text,
    error_message text, targets jsonb, metadata jsonb, raw jsonb, words text[], body bytea
) ON COMMIT DELETE ROWS;

-- name: copy_incoming
COPY incoming FROM STDIN (FORMAT BINARY);

-- The keys first: an event whose (tenant, id) the store holds already is
-- not stored again, whatever its occurred_at (and so its partition).
-- name: insert_new
WITH new AS (
    INSERT INTO event_keys (tenant, id, seq, occurred_at)
    SELECT tenant, id, seq, occurred_at FROM incoming
    ON CONFLICT DO NOTHING
    RETURNING seq
), stored AS (
    INSERT INTO events
    SELECT i.seq, i.tenant, i.id, i.action, i.occurred_at, i.received_at, i.source, i.caller,
           i.outcome, i.version, i.actor_id, i.actor_type, i.actor_name, i.actor_email,
           i.actor_ip, i.actor_metadata, i.context_location, i.context_ip,
           i.context_user_agent, i.context_request_id, i.error_code, i.error_message,
           i.targets, i.metadata, i.raw, array_to_tsvector(i.words), i.body
    FROM incoming i JOIN new USING (seq)
    RETURNING seq, tenant, occurred_at, targets
)
INSERT INTO event_targets (tenant, target_id, target_type, occurred_at, seq)
SELECT s.tenant, t.value ->> 'id', t.value ->> 'type', s.occurred_at, s.seq
FROM stored s, jsonb_array_elements(s.targets) AS t;

-- name: get_event
SELECT e.body FROM event_keys k
JOIN events e ON e.occurred_at = k.occurred_at AND e.seq = k.seq AND e.tenant = k.tenant
WHERE k.tenant = %s AND k.id = %s;

-- The search budget, for the rest of the transaction.
-- name: set_budget
SELECT set_config('statement_timeout', %s, true);

-- name: ping
SELECT 1 FROM events LIMIT 1;
