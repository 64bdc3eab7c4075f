-- Rotate. KEYS: family, generation. ARGV: presented hash, successor hash, sealed
-- successor, grace ms, idle ms, DPoP key thumbprint of the request (empty: none).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'sub', 'gen', 'cur', 'prev', 'prev_until', 'sealed',
  'exp', 'last', 'idle', 'auth', 'jkt')
if not f[1] then return {'invalid'} end
local exp = tonumber(f[7])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if now >= exp or now >= tonumber(f[8]) + tonumber(f[9]) or tonumber(f[2]) < current then
  redis.call('DEL', KEYS[1])
  return {'invalid'}
end
if f[11] and f[11] ~= '' and f[11] ~= ARGV[6] then return {'wrong_key'} end
if f[3] == ARGV[1] then
  local idle = tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1],
    'prev_until', now + tonumber(ARGV[4]), 'sealed', ARGV[3], 'last', now, 'idle', idle)
  redis.call('PEXPIREAT', KEYS[1], math.min(exp, now + idle))
  return {'rotated', f[1], f[2], f[10] or '0', f[11] or ''}
end
if f[4] == ARGV[1] and now < tonumber(f[5]) then
  return {'repeat', f[1], f[2], f[6], f[10] or '0', f[11] or ''}
end
redis.call('DEL', KEYS[1])
return {'reused'}
