-- The epoch ('' if none), the sequence number the index is current as of, and
-- everything still revoked.
local now = tonumber(redis.call('TIME')[1])
local epoch = redis.call('GET', KEYS[3]) or ''
local seq = redis.call('GET', KEYS[2]) or '0'
return {epoch, seq, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')}
