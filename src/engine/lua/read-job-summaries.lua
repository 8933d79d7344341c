-- What the task history reads of each job of a batch (Store.readJobSummaries), in one call:
-- BullMQ's job hash fields data, timestamp, ats (attempts started), pb (processed by), parent and
-- name (a task's data leaves out its task_name, which is the job's name).
-- KEYS the jobs' hashes. Returns one list of the six fields (nil where absent) per key.
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HMGET', KEYS[i], 'data', 'timestamp', 'ats', 'pb', 'parent', 'name')
end
return out
