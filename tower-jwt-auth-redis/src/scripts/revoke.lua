-- Record and publish a revocation. KEYS: index, sequence, epoch. ARGV: entry, keep secs,
-- channel, a new epoch (used if Redis has none: it lost its data, or never had any; the
-- sequence then starts again in the new epoch), epoch secs. The index keeps each entry until
-- Redis time + keep and expires with the last entry. Publishes `epoch\nseq\nuntil\nentry`.
local now = tonumber(redis.call('TIME')[1])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], epoch, 'EX', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local till = now + tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old and tonumber(old) > till then till = tonumber(old) end
redis.call('ZADD', KEYS[1], till, ARGV[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], (tonumber(last[2]) - now + 1) * 1000)
redis.call('PUBLISH', ARGV[3], epoch .. '\n' .. seq .. '\n' .. till .. '\n' .. ARGV[1])
return seq
