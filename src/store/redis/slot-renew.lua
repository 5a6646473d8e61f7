-- Renews the leases of the slots this instance holds (see slot-take.lua). KEYS: the handlers'
-- holders, one per job; ARGV[1]: lease (ms), ARGV[2..]: the job ids, in the order of KEYS.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease * 2)
end
return #KEYS
