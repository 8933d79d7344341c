-- Drops Celery aliases of tasks created before ARGV[1], at most ARGV[2] of them; returns 1 when
-- it stopped at that limit (more may be due). One step, so an alias indexed again meanwhile (a
-- newer score) is never dropped.
-- KEYS[1] alias hash (Celery id -> task id), KEYS[2] alias times (Celery id scored by created_at)
-- ARGV cutoff (ms), limit
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due == 0 then return 0 end
redis.call('HDEL', KEYS[1], unpack(due))
redis.call('ZREM', KEYS[2], unpack(due))
if #due < tonumber(ARGV[2]) then return 0 end
return 1
