-- Raise a user's generation to at least ARGV[1], kept for ARGV[2] ms (a write-back of
-- a "log out everywhere" that Redis lost). KEYS: generation.
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
