-- A lease set: a sorted set of holders scored by expiry. Drops the expired, then renews the
-- holder's lease, or adds it if fewer than the limit hold one. Returns 1 when the holder has it.
-- KEYS[1] lease set; ARGV now (ms), limit, lease (ms), holder
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local expires = tonumber(ARGV[1]) + tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  redis.call('ZADD', KEYS[1], expires, ARGV[4])
elseif redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
else
  redis.call('ZADD', KEYS[1], expires, ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
