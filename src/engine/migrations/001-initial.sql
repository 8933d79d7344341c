-- The tables aiecs keeps next to BullMQ's, as they were before migrations were numbered: IF NOT
-- EXISTS throughout, so a store made by an earlier aiecs (these tables, no aiecs_migrations)
-- upgrades in place. :"schema" stands for the store's schema, quoted.

-- Worker heartbeats.
CREATE TABLE IF NOT EXISTS :"schema".aiecs_worker (
  id text PRIMARY KEY,
  beat jsonb NOT NULL,
  expires_at_ms bigint NOT NULL
);

-- Rate limits (tryHit): one counter per key and window.
CREATE TABLE IF NOT EXISTS :"schema".aiecs_counter (
  key text,
  win bigint,
  count integer NOT NULL,
  expires_at_ms bigint NOT NULL,
  PRIMARY KEY (key, win)
);

-- Concurrency limits (acquireLease): one row per slot held.
CREATE TABLE IF NOT EXISTS :"schema".aiecs_lease (
  key text,
  holder text,
  expires_at_ms bigint NOT NULL,
  PRIMARY KEY (key, holder)
);

-- The advisory lock makes count-then-insert atomic per key across every process.
CREATE OR REPLACE FUNCTION :"schema".aiecs_acquire_lease(
  p_key text, p_holder text, p_limit integer, p_now bigint, p_lease bigint
) RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('aiecs:lease:' || p_key));
  DELETE FROM :"schema".aiecs_lease WHERE key = p_key AND expires_at_ms < p_now;
  UPDATE :"schema".aiecs_lease SET expires_at_ms = p_now + p_lease WHERE key = p_key AND holder = p_holder;
  IF FOUND THEN RETURN true; END IF;
  IF (SELECT count(*) FROM :"schema".aiecs_lease WHERE key = p_key) >= p_limit THEN RETURN false; END IF;
  INSERT INTO :"schema".aiecs_lease (key, holder, expires_at_ms) VALUES (p_key, p_holder, p_now + p_lease);
  RETURN true;
END $fn$;

-- Cancel requests a worker finds on its next heartbeat if the control message was lost.
CREATE TABLE IF NOT EXISTS :"schema".aiecs_cancel (
  task_id text PRIMARY KEY,
  expires_at_ms bigint NOT NULL
);

-- Tasks by user, newest first (listTasks).
CREATE TABLE IF NOT EXISTS :"schema".aiecs_task_index (
  task_id text PRIMARY KEY,
  user_id text NOT NULL,
  queue text NOT NULL,
  created_at_ms bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS aiecs_task_index_user
  ON :"schema".aiecs_task_index (user_id, created_at_ms DESC, task_id DESC);
CREATE INDEX IF NOT EXISTS aiecs_task_index_time
  ON :"schema".aiecs_task_index (created_at_ms DESC, task_id DESC);
