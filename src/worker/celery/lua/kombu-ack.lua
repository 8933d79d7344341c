-- Acks a taken Celery message as kombu's QoS.ack does (ZREM unacked_index, HDEL unacked), and in
-- the same step maps its Celery id to the aiecs task id (for revokes) when they differ, and says
-- whether the id was revoked meanwhile: a revoke lands either before this (seen here) or after
-- (it finds the mapping), never between.
-- KEYS: unacked, unacked_index, revoked zset, the id's mapping key.
-- ARGV: delivery tag, Celery id, aiecs task id ('' = the same), mapping TTL (s).
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4]) end
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then return 1 end
return 0
