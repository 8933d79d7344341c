-- The durable task history (src/engine/history): one row per state change of a task, written by the
-- history consumer from the queues' event streams. :"schema" stands for the history's schema.
CREATE TABLE IF NOT EXISTS :"schema".aiecs_history (
  id bigserial PRIMARY KEY,
  -- Where the row came from: the queue and its event's id. A batch written twice (a consumer
  -- that died before its position was saved) adds nothing the second time.
  queue text NOT NULL,
  event_id text NOT NULL,
  task_id text NOT NULL,
  user_id text NOT NULL,
  task_name text,
  mode text,
  service text,
  step integer,
  -- queued | running | progress | completed | failed: which event of the task.
  kind text NOT NULL,
  status text NOT NULL,
  seq double precision NOT NULL,
  attempt integer NOT NULL DEFAULT 0,
  progress real,
  message text,
  result jsonb,
  error_code text,
  error_message text,
  worker text,
  root_id text,
  parent_id text,
  schedule text,
  -- When the state changed, and when the task was created (epoch ms).
  at_ms bigint NOT NULL,
  created_at_ms bigint,
  UNIQUE (queue, event_id)
);

-- Keyset pages, newest first: per user, per status, everyone's; a task's rows in order.
CREATE INDEX IF NOT EXISTS aiecs_history_user ON :"schema".aiecs_history (user_id, at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS aiecs_history_status ON :"schema".aiecs_history (status, at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS aiecs_history_at ON :"schema".aiecs_history (at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS aiecs_history_task ON :"schema".aiecs_history (task_id, at_ms, id);

-- How far the consumer has read each queue's event stream: written in the same transaction as
-- the rows of the batch it read.
CREATE TABLE IF NOT EXISTS :"schema".aiecs_history_position (
  queue text PRIMARY KEY,
  event_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
