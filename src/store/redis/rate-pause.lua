-- A 429 with Retry-After: the shared HubEx rate gate lets no request go for ARGV[1] ms (by
-- Redis's clock; a later pause already set is kept). KEYS[1]: paused until (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilMs > current then
  redis.call('SET', KEYS[1], tostring(untilMs), 'PX', tonumber(ARGV[1]) + 1000)
end
return 0
