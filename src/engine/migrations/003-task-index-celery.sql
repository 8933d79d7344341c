-- A bridged task's Celery id when the seed's task_id argument chose another task id: Flower
-- clients know the task by its Celery id only (Store.taskIdForCelery). On the index row, so
-- retention's trim drops it with the entry; NULL on every other row, which the partial index
-- leaves out (it costs nothing to tasks that are not bridged under another id).
ALTER TABLE :"schema".aiecs_task_index ADD COLUMN IF NOT EXISTS celery_id text;
CREATE INDEX IF NOT EXISTS aiecs_task_index_celery
  ON :"schema".aiecs_task_index (celery_id, created_at_ms DESC) WHERE celery_id IS NOT NULL;
