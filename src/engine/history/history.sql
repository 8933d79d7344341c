-- The task history's statements (history-db.ts). :"schema" stands for the history's schema.

-- name: copy_entries
-- A batch's rows in COPY's text format (history-db.ts: copyText, in this column order): the
-- cheapest way in. A row written before fails it; the batch then goes in by insert_entries.
COPY :"schema".aiecs_history (task_id, user_id, task_name, mode, service, step, root_id,
  parent_id, schedule, created_at_ms, queue, event_id, kind, status, seq, attempt, progress,
  message, result, error_code, error_message, worker, at_ms) FROM STDIN;

-- name: insert_entries
-- A batch as one array per column (history-db.ts: columnArrays), where COPY is not at hand
-- (PGlite) or a row of the batch is there already: a row already written (the same event of the
-- same queue) is skipped, so a batch read again is harmless.
INSERT INTO :"schema".aiecs_history (task_id, user_id, task_name, mode, service, step, root_id,
  parent_id, schedule, created_at_ms, queue, event_id, kind, status, seq, attempt, progress,
  message, result, error_code, error_message, worker, at_ms)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
  $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::text[],
  $14::text[], $15::double precision[], $16::integer[], $17::real[], $18::text[], $19::jsonb[],
  $20::text[], $21::text[], $22::text[], $23::bigint[])
ON CONFLICT (queue, event_id) DO NOTHING;

-- name: save_positions
INSERT INTO :"schema".aiecs_history_position (queue, event_id)
SELECT key, value FROM jsonb_each_text($1::jsonb)
ON CONFLICT (queue) DO UPDATE SET event_id = EXCLUDED.event_id, updated_at = now();

-- name: positions
SELECT queue, event_id FROM :"schema".aiecs_history_position;

-- name: list
-- Newest first, a user's (their index) or a status's; the cursor is the last row's (at_ms, id),
-- so rows added meanwhile (newer) never shift a page.
SELECT * FROM :"schema".aiecs_history
WHERE ($2::text IS NULL OR user_id = $2)
  AND ($3::text IS NULL OR status = $3)
  AND ($4::bigint IS NULL OR at_ms >= $4)
  AND ($5::bigint IS NULL OR at_ms <= $5)
  AND ($6::bigint IS NULL OR (at_ms, id) < ($6, $7::bigint))
ORDER BY at_ms DESC, id DESC
LIMIT $1;

-- name: list_all
-- Everyone's, newest first (list's page and cursor): each status's newest from the per-status
-- index, merged. The statuses present are found by skipping through that index, one probe each.
WITH RECURSIVE present AS (
  (SELECT status FROM :"schema".aiecs_history ORDER BY status LIMIT 1)
  UNION ALL
  SELECT (SELECT h.status FROM :"schema".aiecs_history h WHERE h.status > p.status
          ORDER BY h.status LIMIT 1)
  FROM present p WHERE p.status IS NOT NULL
)
SELECT h.* FROM present p CROSS JOIN LATERAL (
  SELECT * FROM :"schema".aiecs_history
  WHERE status = p.status
    AND ($2::bigint IS NULL OR at_ms >= $2)
    AND ($3::bigint IS NULL OR at_ms <= $3)
    AND ($4::bigint IS NULL OR (at_ms, id) < ($4, $5::bigint))
  ORDER BY at_ms DESC, id DESC
  LIMIT $1
) h
ORDER BY h.at_ms DESC, h.id DESC
LIMIT $1;

-- name: task
SELECT * FROM :"schema".aiecs_history WHERE task_id = $1 ORDER BY at_ms, id LIMIT $2;

-- name: erase_user
WITH gone AS (DELETE FROM :"schema".aiecs_history WHERE user_id = $1 RETURNING 1)
SELECT count(*)::int AS n FROM gone;

-- name: sweep
-- In chunks: a large first sweep never holds one long transaction. The old rows are found from
-- the per-status index, one status at a time (as list_all finds them).
WITH RECURSIVE present AS (
  (SELECT status FROM :"schema".aiecs_history ORDER BY status LIMIT 1)
  UNION ALL
  SELECT (SELECT h.status FROM :"schema".aiecs_history h WHERE h.status > p.status
          ORDER BY h.status LIMIT 1)
  FROM present p WHERE p.status IS NOT NULL
), old AS (
  SELECT o.ctid FROM present p CROSS JOIN LATERAL (
    SELECT ctid FROM :"schema".aiecs_history WHERE status = p.status AND at_ms < $1 LIMIT $2
  ) o
  LIMIT $2
), gone AS (
  DELETE FROM :"schema".aiecs_history WHERE ctid = ANY (ARRAY(SELECT ctid FROM old)) RETURNING 1
)
SELECT count(*)::int AS n FROM gone;
