-- How long the shared HubEx rate gate stays closed by a 429, in ms by Redis's clock (0: open).
-- KEYS[1]: paused until (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
return math.max(paused - now, 0)
