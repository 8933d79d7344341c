-- The task history's statements (history-db.ts). :"schema" stands for the history's schema.

-- name: insert_entries
-- One statement per batch: the rows come as one JSON array. A row already written (the same
-- event of the same queue) is skipped, so a batch read again is harmless.
INSERT INTO :"schema".aiecs_history (queue, event_id, task_id, user_id, task_name, mode, service,
  step, kind, status, seq, attempt, progress, message, result, error_code, error_message, worker,
  root_id, parent_id, schedule, at_ms, created_at_ms)
SELECT queue, event_id, task_id, user_id, task_name, mode, service, step, kind, status, seq,
  attempt, progress, message, result, error_code, error_message, worker, root_id, parent_id,
  schedule, at_ms, created_at_ms
FROM jsonb_to_recordset($1::jsonb) AS x(queue text, event_id text, task_id text, user_id text,
  task_name text, mode text, service text, step integer, kind text, status text,
  seq double precision, attempt integer, progress real, message text, result jsonb,
  error_code text, error_message text, worker text, root_id text, parent_id text, schedule text,
  at_ms bigint, created_at_ms bigint)
ON CONFLICT (queue, event_id) DO NOTHING;

-- name: save_positions
INSERT INTO :"schema".aiecs_history_position (queue, event_id)
SELECT key, value FROM jsonb_each_text($1::jsonb)
ON CONFLICT (queue) DO UPDATE SET event_id = EXCLUDED.event_id, updated_at = now();

-- name: positions
SELECT queue, event_id FROM :"schema".aiecs_history_position;

-- name: list
-- Newest first; the cursor is the last row's (at_ms, id), so rows added meanwhile (newer) never
-- shift a page.
SELECT * FROM :"schema".aiecs_history
WHERE ($2::text IS NULL OR user_id = $2)
  AND ($3::text IS NULL OR status = $3)
  AND ($4::bigint IS NULL OR at_ms >= $4)
  AND ($5::bigint IS NULL OR at_ms <= $5)
  AND ($6::bigint IS NULL OR (at_ms, id) < ($6, $7::bigint))
ORDER BY at_ms DESC, id DESC
LIMIT $1;

-- name: task
SELECT * FROM :"schema".aiecs_history WHERE task_id = $1 ORDER BY at_ms, id LIMIT $2;

-- name: erase_user
WITH gone AS (DELETE FROM :"schema".aiecs_history WHERE user_id = $1 RETURNING 1)
SELECT count(*)::int AS n FROM gone;

-- name: sweep
-- In chunks: a large first sweep never holds one long transaction.
WITH gone AS (
  DELETE FROM :"schema".aiecs_history
  WHERE id IN (SELECT id FROM :"schema".aiecs_history WHERE at_ms < $1 LIMIT $2)
  RETURNING 1
)
SELECT count(*)::int AS n FROM gone;
