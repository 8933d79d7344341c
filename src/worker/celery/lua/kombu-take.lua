-- Takes up to ARGV[1] Celery messages off kombu's Redis lists, in the order of KEYS (priority
-- sub-lists major, as kombu's BRPOP lists them), each atomically into kombu's `unacked` hash and
-- `unacked_index` zset exactly as kombu's QoS.append writes them (so kombu's restore_visible and
-- ours restore them alike): a SIGKILL at any instant leaves every message in a list or in unacked.
-- An envelope that is not JSON or has no delivery_tag cannot be tracked: it goes to the
-- dead-letter list instead (trimmed to ARGV[4]) and is returned with an empty tag.
-- KEYS: the lists..., unacked, unacked_index, revoked zset, dead-letter list.
-- ARGV: max count, now (epoch seconds), kombu's separator, dead-letter length.
-- Returns key, message, tag, revoked ('1' when its id is in the revoked zset) per message.
local n = #KEYS
local unacked, index, revoked, rejected = KEYS[n - 3], KEYS[n - 2], KEYS[n - 1], KEYS[n]
local max, now, sep, keep = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}
local taken = 0
for i = 1, n - 4 do
  local key = KEYS[i]
  while taken < max do
    local item = redis.call('RPOP', key)
    if not item then break end
    taken = taken + 1
    local ok, env = pcall(cjson.decode, item)
    local tag, ex, rk, id
    if ok and type(env) == 'table' and type(env.properties) == 'table' then
      local p = env.properties
      if type(p.delivery_tag) == 'string' and p.delivery_tag ~= '' then tag = p.delivery_tag end
      if type(p.delivery_info) == 'table' then
        ex = p.delivery_info.exchange
        rk = p.delivery_info.routing_key
      end
      if type(env.headers) == 'table' and type(env.headers.id) == 'string' then id = env.headers.id end
    end
    local flag = '0'
    if tag then
      if type(ex) ~= 'string' then ex = '' end
      if type(rk) ~= 'string' then
        local at = string.find(key, sep, 1, true)
        rk = at and string.sub(key, 1, at - 1) or key
      end
      redis.call('HSET', unacked, tag, '[' .. item .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']')
      redis.call('ZADD', index, now, tag)
      if id and redis.call('ZSCORE', revoked, id) then flag = '1' end
    else
      redis.call('LPUSH', rejected, item)
      redis.call('LTRIM', rejected, 0, keep - 1)
      tag = ''
    end
    out[#out + 1] = key
    out[#out + 1] = item
    out[#out + 1] = tag
    out[#out + 1] = flag
  end
end
return out
