-- One request's turn at the shared HubEx rate gate (src/store/redis/rate-gate.ts): turns are
-- spaced ARGV[1] ms apart across every instance, none before the pause a 429 set. Redis's own
-- clock, so that instances' clocks need not agree. Returns how long the caller waits, in ms.
-- KEYS[1]: the next turn (ms), KEYS[2]: paused until (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spacing = tonumber(ARGV[1])
local nextTurn = tonumber(redis.call('GET', KEYS[1]) or '0')
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
local turn = math.max(nextTurn, now, paused)
redis.call('SET', KEYS[1], tostring(turn + spacing), 'PX', math.ceil(turn + spacing - now) + 1000)
return turn - now
