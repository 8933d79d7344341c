-- The gap-aware event reader's queries (bullmq-pg-event-reader.ts), on BullMQ's own `event`
-- table: the backend's connections pin search_path to the store's schema.

-- name: last_event_id
SELECT COALESCE(MAX(id), 0)::bigint AS id FROM event WHERE queue = ANY($1::text[]);

-- name: events_by_id
SELECT id, queue, event, data, created_at_ms FROM event WHERE queue = ANY($1::text[]) AND id = ANY($2::bigint[]);

-- name: events_after
SELECT id, queue, event, data, created_at_ms FROM event WHERE queue = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3;
