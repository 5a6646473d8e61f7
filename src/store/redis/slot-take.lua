-- A run's slot under its handler's concurrency limit, across every instance: the holders are a
-- sorted set of job ids scored by their lease's end (Redis's clock), so that the slots of an
-- instance that died free themselves. Returns 1 when the job holds a slot, 0 when the handler is
-- at its limit. KEYS[1]: the handler's holders; ARGV[1]: job id, ARGV[2]: limit, ARGV[3]: lease (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leaseEnd = now + tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], leaseEnd, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
