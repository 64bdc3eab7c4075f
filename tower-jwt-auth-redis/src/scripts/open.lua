-- Open a family. KEYS: family, generation. ARGV: sub, token hash, lifetime ms, idle ms,
-- generation ttl ms, auth time, DPoP key thumbprint (empty: unbound), lowest generation.
-- Returns the user's generation (raised to the lowest one if the store had less).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[8]) > gen then
  gen = tonumber(ARGV[8])
  redis.call('SET', KEYS[2], string.format('%.0f', gen), 'PX', ARGV[5])
elseif gen > 0 and redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local exp = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'sub', ARGV[1], 'gen', string.format('%.0f', gen), 'cur', ARGV[2], 'exp', exp,
  'last', now, 'idle', ARGV[4], 'auth', ARGV[6], 'jkt', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], math.min(exp, now + tonumber(ARGV[4])))
return gen
