-- name: get_cursor
SELECT seq FROM cursors WHERE consumer = ?;
