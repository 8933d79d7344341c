-- Appends the entries (ARGV) to the list of all tasks (KEYS[1]) and to their one user's list (KEYS[2]).
redis.call('RPUSH', KEYS[1], unpack(ARGV))
return redis.call('RPUSH', KEYS[2], unpack(ARGV))
