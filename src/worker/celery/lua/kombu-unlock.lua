-- Releases kombu's unacked_mutex if this holder still owns it (redis-py Lock.release's rule).
-- KEYS: the mutex. ARGV: the holder's token.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
