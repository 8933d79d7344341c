-- Restores one unacked Celery message as kombu's restore_by_tag does: out of unacked and
-- unacked_index and onto its queue(s), RPUSH (taken next) or LPUSH for a requeue at the back;
-- only if the entry is still there and, when ARGV[2] is not empty, still the one the caller read:
-- an ack or another restorer may have won since.
-- KEYS: unacked, unacked_index, the destination lists...
-- ARGV: tag, the entry as read, the message to push, 'left' or 'right'.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if ARGV[2] ~= '' and current ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
local push = ARGV[4] == 'left' and 'LPUSH' or 'RPUSH'
for i = 3, #KEYS do redis.call(push, KEYS[i], ARGV[3]) end
return 1
