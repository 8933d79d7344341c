-- Every index of aiecs_history costs every row written (three or more per task), and the writes
-- are most of what the history costs: two indexes that no read needs go.
-- - The primary key on `id`: ids still come from their sequence (unique by construction, the
--   keyset's tie-break), but no read looks a row up by id (the sweep deletes by ctid). The rows
--   stay unique by (queue, event_id), which also names them for logical replication.
-- - The index on (at_ms, id): everyone's rows newest first, and the sweep's old rows, are read
--   from the per-status index one status at a time (history.sql: list_all, sweep).
ALTER TABLE :"schema".aiecs_history DROP CONSTRAINT IF EXISTS aiecs_history_pkey;
ALTER TABLE :"schema".aiecs_history REPLICA IDENTITY USING INDEX aiecs_history_queue_event_id_key;
DROP INDEX IF EXISTS :"schema".aiecs_history_at;
