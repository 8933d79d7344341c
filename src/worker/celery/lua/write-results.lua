-- Writes Celery result metas as Celery's RedisBackend does (SETEX, or SET without an expiry, then
-- PUBLISH on the same key) and the relay's stream positions, in one step, only while the caller
-- holds the relay lock: a relay that lost it cannot write beside the one that took over. A key
-- already in a ready state (SUCCESS, FAILURE, REVOKED) is kept (Celery keeps a SUCCESS; aiecs's
-- terminal states never change), so a batch written twice publishes nothing twice.
-- KEYS[1] lock, KEYS[2 .. 1+P] position keys, then the meta keys
-- ARGV[1] holder, ARGV[2] expiry (s, 0 = none), ARGV[3] P, ARGV[4 .. 3+P] positions, then the metas
-- Returns the number of metas written, or -1 when the lock is not the caller's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local expires = tonumber(ARGV[2])
local positions = tonumber(ARGV[3])
local written = 0
for i = 2 + positions, #KEYS do
  local key = KEYS[i]
  local value = ARGV[i + 2]
  local current = redis.call('GET', key)
  local ready = false
  if current then
    local ok, meta = pcall(cjson.decode, current)
    if ok and type(meta) == 'table' then
      local status = meta['status']
      ready = status == 'SUCCESS' or status == 'FAILURE' or status == 'REVOKED'
    end
  end
  if not ready then
    if expires > 0 then
      redis.call('SETEX', key, expires, value)
    else
      redis.call('SET', key, value)
    end
    redis.call('PUBLISH', key, value)
    written = written + 1
  end
end
for i = 1, positions do
  redis.call('SET', KEYS[1 + i], ARGV[3 + i])
end
return written
