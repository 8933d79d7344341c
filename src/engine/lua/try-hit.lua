-- A fixed-window counter: counts a hit unless the window's limit is reached.
-- Returns {1, 0} when counted, else {0, ms until the window's key expires}.
-- KEYS[1] the window's counter; ARGV limit, window (ms)
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return {0, redis.call('PTTL', KEYS[1])} end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, 0}
