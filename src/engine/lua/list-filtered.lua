-- list-tasks.lua narrowed by a filter, reading at most a budget of entries older than the cursor.
-- KEYS[1] index list, KEYS[2] trimmed count. ARGV: limit, cursor position ('' for the newest
-- page), budget, then queue, task_name, mode, service ('' for any), then since and until (epoch
-- ms, '' for none). An entry's labels are queue:task_name:mode:service (entries indexed before
-- the labels: the queue alone). The list is in submit order, so a scan stops a minute past
-- `since` (an entry is appended within its submit). Returns {trimmed, {position, entry, ...} of
-- up to limit + 1 matches, the last position read (-1: nothing older to read), its entry, the
-- cursor's own entry}.
local trimmed = tonumber(redis.call('GET', KEYS[2]) or '0')
local len = redis.call('LLEN', KEYS[1])
local limit = tonumber(ARGV[1])
local budget = tonumber(ARGV[3])
local want = {ARGV[4], ARGV[5], ARGV[6], ARGV[7]}
local since = tonumber(ARGV[8])
local till = tonumber(ARGV[9])
local i = len - 1
local own = false
if ARGV[2] ~= '' then
  local at = tonumber(ARGV[2]) - trimmed
  if at < 1 or at >= len then return {trimmed, {}, -1, false, false} end
  own = redis.call('LINDEX', KEYS[1], at)
  i = at - 1
end
local found = {}
local scanned = 0
local lastPos = -1
local lastEntry = false
while i >= 0 do
  local first = math.max(0, i - 199)
  local chunk = redis.call('LRANGE', KEYS[1], first, i)
  local stop = false
  for j = #chunk, 1, -1 do
    local entry = chunk[j]
    local pos = first + j - 1
    local p1 = string.find(entry, '|', 1, true)
    local created = tonumber(string.sub(entry, 1, p1 - 1))
    if since and created < since - 60000 then return {trimmed, found, -1, false, own} end
    scanned = scanned + 1
    local ok = (not since or created >= since) and (not till or created <= till)
    if ok then
      local p2 = string.find(entry, '|', p1 + 1, true)
      local k = 1
      for part in string.gmatch(string.sub(entry, p1 + 1, p2 - 1), '[^:]+') do
        if want[k] ~= '' and part ~= want[k] then ok = false end
        k = k + 1
      end
      for m = k, 4 do if want[m] ~= '' then ok = false end end
    end
    if ok then
      found[#found + 1] = pos
      found[#found + 1] = entry
    end
    lastPos = pos
    lastEntry = entry
    if #found > 2 * limit or scanned >= budget then
      stop = true
      break
    end
  end
  if stop then break end
  i = first - 1
end
if lastPos == 0 or (#found <= 2 * limit and scanned < budget) then lastPos = -1 end
return {trimmed, found, lastPos, lastEntry, own}
