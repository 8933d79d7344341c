-- What BullMQ's updateProgress-3.lua and QueueEventsProducer.publishEvent do, for a batch: every
-- progress write stores the job's progress and adds a `progress` entry; every custom event adds its
-- entry. One stream, one MAXLEN (the queue's `opts.maxLenEvents`, set to BullMQ's 10,000 when
-- missing), in the order given. Answers 0 per item, or -1 for progress of a job that is gone.
-- KEYS[1] events stream, KEYS[2] meta hash; ARGV[1] the job key prefix; then per item either
-- `p <job id> <json>` or `e <n> <n field pairs>`.
local maxEvents = redis.call('HGET', KEYS[2], 'opts.maxLenEvents')
if not maxEvents then
  maxEvents = 10000
  redis.call('HSET', KEYS[2], 'opts.maxLenEvents', maxEvents)
end
local results = {}
local i = 2
while i <= #ARGV do
  if ARGV[i] == 'p' then
    local id, data = ARGV[i + 1], ARGV[i + 2]
    local key = ARGV[1] .. id
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'progress', data)
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxEvents, '*', 'event', 'progress', 'jobId', id, 'data', data)
      results[#results + 1] = 0
    else
      results[#results + 1] = -1
    end
    i = i + 3
  else
    local pairs = tonumber(ARGV[i + 1])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxEvents, '*', unpack(ARGV, i + 2, i + 1 + pairs * 2))
    results[#results + 1] = 0
    i = i + 2 + pairs * 2
  end
end
return results
