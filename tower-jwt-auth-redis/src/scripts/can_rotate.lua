-- Whether ROTATE would hand out a token, changing nothing. KEYS: family, generation.
-- ARGV: presented hash, DPoP key thumbprint of the request (empty: none), '1' to accept any
-- key (a revocation needs no proof). Returns 1 or 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'gen', 'cur', 'prev', 'prev_until', 'exp', 'last',
  'idle', 'jkt')
if not f[1] then return 0 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if now >= tonumber(f[5]) or now >= tonumber(f[6]) + tonumber(f[7]) or tonumber(f[1]) < current then
  return 0
end
if ARGV[3] ~= '1' and f[8] and f[8] ~= '' and f[8] ~= ARGV[2] then return 0 end
if f[2] == ARGV[1] then return 1 end
if f[3] == ARGV[1] and now < tonumber(f[4]) then return 1 end
return 0
