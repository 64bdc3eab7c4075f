-- Write back what a node holds after Redis lost its data, merged into what is there
-- (each entry keeps the later of its two times). KEYS: index, sequence, epoch. ARGV: a new
-- epoch (used if Redis has none), epoch secs, then entry and until (Unix secs) pairs. Raises
-- the sequence number, so every node reloads. Returns the epoch.
local now = tonumber(redis.call('TIME')[1])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], epoch, 'EX', ARGV[2])
for i = 3, #ARGV - 1, 2 do
  local till = tonumber(ARGV[i + 1])
  if till > now then
    local old = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if not old or tonumber(old) < till then redis.call('ZADD', KEYS[1], till, ARGV[i]) end
  end
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIRE', KEYS[1], (tonumber(last[2]) - now + 1) * 1000) end
return epoch
