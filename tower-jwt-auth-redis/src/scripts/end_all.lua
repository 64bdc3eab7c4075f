-- Log out everywhere. KEYS: generation. ARGV: keep ms. Returns the new generation: the
-- larger of the old one plus one and Redis time in ms, so it only ever grows, even after
-- Redis lost the old value.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
if g < now then g = now end
local keep = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > keep then keep = ttl end
redis.call('SET', KEYS[1], string.format('%.0f', g), 'PX', keep)
return g
