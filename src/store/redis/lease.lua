-- The reconciler's lease (src/store/redis/sync.ts): one holder at a time, for a time.
-- KEYS[1]: the lease. ARGV: 'take' or 'release', the holder, the time (ms) a take holds it.
-- take: 1 when the holder has it now (it was free, run out, or the holder's: renewed), else 0.
local held = redis.call('GET', KEYS[1])
if ARGV[1] == 'take' then
  if held and held ~= ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if held == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 0
