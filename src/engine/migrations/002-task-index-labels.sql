-- What the dashboard's task list filters on, fixed at submit: task name, mode and service (NULL
-- on rows indexed before this migration; filters on them do not match those rows).
ALTER TABLE :"schema".aiecs_task_index
  ADD COLUMN IF NOT EXISTS task_name text,
  ADD COLUMN IF NOT EXISTS mode text,
  ADD COLUMN IF NOT EXISTS service text;

-- The selective filters get an index each (a task type, a service); queue and mode have a few
-- values, which a scan in time order meets soon enough.
CREATE INDEX IF NOT EXISTS aiecs_task_index_name
  ON :"schema".aiecs_task_index (task_name, created_at_ms DESC, task_id DESC);
CREATE INDEX IF NOT EXISTS aiecs_task_index_service
  ON :"schema".aiecs_task_index (service, created_at_ms DESC, task_id DESC);
