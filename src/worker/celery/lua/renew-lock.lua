-- Renews the relay lock for its holder. KEYS[1] lock; ARGV[1] holder, ARGV[2] ttl (ms).
-- Returns 1 when renewed, 0 when another holds it (or none).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
