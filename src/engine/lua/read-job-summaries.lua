-- What the task history reads of each job of a batch (Store.readJobSummaries), in one call:
-- BullMQ's job hash fields data, timestamp, ats (attempts started), pb (processed by) and parent.
-- KEYS the jobs' hashes. Returns one list of the five fields (nil where absent) per key.
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HMGET', KEYS[i], 'data', 'timestamp', 'ats', 'pb', 'parent')
end
return out
