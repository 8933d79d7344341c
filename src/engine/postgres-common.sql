-- Queries of the PostgreSQL and embedded stores on our own tables (the tables themselves come
-- from the migrations). :"schema" stands for the store's schema, quoted, filled in at start.

-- name: notify
SELECT pg_notify($1, $2);

-- name: count_hit
-- One statement: the row lock of ON CONFLICT makes concurrent hits count exactly.
INSERT INTO :"schema".aiecs_counter AS c (key, win, count, expires_at_ms) VALUES ($1, $2, 1, $3)
ON CONFLICT (key, win) DO UPDATE SET count = c.count + 1 WHERE c.count < $4
RETURNING count;

-- name: drop_expired_hits
DELETE FROM :"schema".aiecs_counter WHERE expires_at_ms < $1;

-- name: acquire_lease
SELECT :"schema".aiecs_acquire_lease($1, $2, $3, $4, $5) AS ok;

-- name: release_lease
DELETE FROM :"schema".aiecs_lease WHERE key = $1 AND holder = $2;

-- name: index_tasks
INSERT INTO :"schema".aiecs_task_index
  (task_id, user_id, queue, created_at_ms, task_name, mode, service, celery_id)
SELECT * FROM unnest(
  $1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[]
)
ON CONFLICT (task_id) DO NOTHING;

-- name: trim_index
DELETE FROM :"schema".aiecs_task_index WHERE created_at_ms < $1;

-- name: task_for_celery
-- A Celery id's alias (the partial index on celery_id serves it), the newest row when several.
SELECT task_id FROM :"schema".aiecs_task_index WHERE celery_id = $1
ORDER BY created_at_ms DESC LIMIT 1;

-- name: list_tasks
-- $2 the user (NULL: everyone's), $3 and $4 the cursor (NULL: the newest page). The statement is
-- planned with its parameters' values, so the NULL tests fold away and an index serves the rest.
-- $5..$8 queue, task_name, mode, service and $9, $10 since and until (epoch ms): the filters
-- (NULL: any).
SELECT task_id, user_id, queue, created_at_ms FROM :"schema".aiecs_task_index
WHERE ($2::text IS NULL OR user_id = $2::text)
  AND ($3::bigint IS NULL OR (created_at_ms, task_id) < ($3::bigint, $4::text))
  AND ($5::text IS NULL OR queue = $5::text)
  AND ($6::text IS NULL OR task_name = $6::text)
  AND ($7::text IS NULL OR mode = $7::text)
  AND ($8::text IS NULL OR service = $8::text)
  AND ($9::bigint IS NULL OR created_at_ms >= $9::bigint)
  AND ($10::bigint IS NULL OR created_at_ms <= $10::bigint)
ORDER BY created_at_ms DESC, task_id DESC
LIMIT $1;

-- name: request_cancel
INSERT INTO :"schema".aiecs_cancel (task_id, expires_at_ms) VALUES ($1, $2)
ON CONFLICT (task_id) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms;

-- name: drop_expired_cancels
DELETE FROM :"schema".aiecs_cancel WHERE expires_at_ms < $1;

-- name: clear_cancel
DELETE FROM :"schema".aiecs_cancel WHERE task_id = $1;

-- name: cancel_requested
SELECT task_id FROM :"schema".aiecs_cancel WHERE task_id = ANY($1::text[]) AND expires_at_ms >= $2;

-- name: put_heartbeat
INSERT INTO :"schema".aiecs_worker (id, beat, expires_at_ms) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET beat = EXCLUDED.beat, expires_at_ms = EXCLUDED.expires_at_ms;

-- name: remove_heartbeat
DELETE FROM :"schema".aiecs_worker WHERE id = $1;

-- name: drop_expired_heartbeats
DELETE FROM :"schema".aiecs_worker WHERE expires_at_ms < $1;

-- name: list_heartbeats
SELECT beat FROM :"schema".aiecs_worker WHERE expires_at_ms >= $1 ORDER BY id;

-- name: events_lost_after
-- BullMQ's publish_event keeps a queue's last `opts.maxLenEvents` ids (10,000 by default) and
-- deletes below: events after $2 are gone once the queue's first kept event is past $2 + 1 and
-- its ids went more than that length beyond $2.
SELECT (min(id) > $2::bigint + 1
    AND max(id) - COALESCE((SELECT value::bigint FROM :"schema".meta
                             WHERE queue = $1 AND field = 'opts.maxLenEvents'), 10000) > $2::bigint) AS lost
FROM :"schema".event WHERE queue = $1;

-- name: events_restarted_before
-- Event ids come from one sequence for every queue, and trimming keeps each queue's newest: the
-- largest id held is below an id handed out before only when the table was emptied and the
-- sequence started again (the queue tables recreated or truncated).
SELECT COALESCE(max(id), 0) < $1::bigint AS restarted FROM :"schema".event;
