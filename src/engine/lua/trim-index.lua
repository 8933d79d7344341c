-- Cuts index entries created before ARGV[1] off the head, 100 at a time, for at most ARGV[2]
-- rounds; stops at the first younger entry. Returns 1 when it stopped for the round limit.
-- KEYS[1] index list, KEYS[2] trimmed count; ARGV cutoff (ms), rounds
local cutoff = tonumber(ARGV[1])
for round = 1, tonumber(ARGV[2]) do
  local head = redis.call('LRANGE', KEYS[1], 0, 99)
  local n = 0
  for _, entry in ipairs(head) do
    if tonumber(string.sub(entry, 1, string.find(entry, '|', 1, true) - 1)) >= cutoff then break end
    n = n + 1
  end
  if n > 0 then
    redis.call('LTRIM', KEYS[1], n, -1)
    redis.call('INCRBY', KEYS[2], n)
  end
  if n < 100 then
    -- An emptied list starts its positions again: list-tasks.lua ends a cursor from before.
    if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
    return 0
  end
end
return 1
