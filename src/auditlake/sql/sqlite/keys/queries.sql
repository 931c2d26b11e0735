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
