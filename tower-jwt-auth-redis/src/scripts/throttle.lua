-- One GCRA step. KEYS: limiter. ARGV: interval ms, period ms, 'take' or 'give'.
-- Returns {allowed (1/0), retry after ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
if ARGV[3] == 'take' then
  local nxt = tat + interval
  local ahead = nxt - now
  if ahead > tonumber(ARGV[2]) then return {0, ahead - tonumber(ARGV[2])} end
  redis.call('SET', KEYS[1], nxt, 'PX', ahead)
  return {1, 0}
end
local nxt = tat - interval
if nxt <= now then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], nxt, 'PX', nxt - now) end
return {1, 0}
