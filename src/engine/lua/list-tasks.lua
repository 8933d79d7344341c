-- The task index is a list per key, oldest at the head; the trimmed-count key makes positions
-- absolute (trimmed + index), so a cursor stays valid while trim-index.lua cuts the head off.
-- Reads the page older than a cursor, plus the cursor's own entry (last) so the caller can check
-- the cursor still names it. Returns {absolute position of the first entry, entries}.
-- KEYS[1] index list, KEYS[2] trimmed count; ARGV limit, cursor position ('' for the newest page)
local trimmed = tonumber(redis.call('GET', KEYS[2]) or '0')
local len = redis.call('LLEN', KEYS[1])
local limit = tonumber(ARGV[1])
local last = len - 1
local older = last
if ARGV[2] ~= '' then
  last = tonumber(ARGV[2]) - trimmed
  -- Before the head: trimmed, and everything older with it. Past the tail: positions restarted.
  if last < 1 or last >= len then return {trimmed, {}} end
  older = last - 1
end
if older < 0 then return {trimmed, {}} end
local first = math.max(0, older - limit)
return {trimmed + first, redis.call('LRANGE', KEYS[1], first, last)}
