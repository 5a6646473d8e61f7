-- The accept of one request's events, atomic on Redis (src/store/redis/store.ts).
-- Per event: a duplicate (by id; by body within the dedup window), or a new hash with the next
-- sequence number. Answers, per event, {id, 1 if duplicate, the handlers whose jobs to add, seq}.
-- A new event pushed about a task marks the task's latest push (for the reconciler, sync.ts), in
-- a sorted set per tenant kept to a week.
-- ARGV: the key prefix, now (ms), the dedup window (ms), the events as JSON.
local p = ARGV[1]
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local evs = cjson.decode(ARGV[4])
local out = {}
for i, e in ipairs(evs) do
  local base = p .. 'ev:' .. e.key
  local id = e.key
  local dup = false
  if redis.call('EXISTS', base) == 1 then
    if redis.call('HGET', base, 'idSource') == 'payload' then
      dup = true
    else
      local last = redis.call('HGET', base, 'lastId') or e.key
      local lastAt = tonumber(redis.call('HGET', base, 'lastAt') or '0')
      if now - lastAt < window then
        dup = true
        id = last
      else
        -- The counter lives in the first event's hash, which retention may have deleted and made
        -- anew: skip the numbers a kept repeat still holds.
        repeat
          local n = redis.call('HINCRBY', base, 'repeats', 1)
          id = e.key .. '.' .. (n + 1)
        until redis.call('EXISTS', p .. 'ev:' .. id) == 0
        redis.call('HSET', base, 'lastId', id, 'lastAt', now)
      end
    end
  end
  local key = p .. 'ev:' .. id
  if dup then
    redis.call('HINCRBY', key, 'duplicates', 1)
    -- Its jobs are made again only when they may never have been (no 'jobs' mark): a completed
    -- job removed after RETENTION_DAYS must not run twice.
    local handlers = '[]'
    if redis.call('HEXISTS', key, 'jobs') == 0 then handlers = redis.call('HGET', key, 'handlers') or '[]' end
    out[i] = {id, 1, handlers, redis.call('HGET', key, 'seq') or '0'}
  else
    local seq = redis.call('INCR', p .. 'seq')
    redis.call('HSET', key, 'seq', seq, 'id', id, 'tenant', e.tenant, 'idSource', e.idSource, 'eventID', e.eventID,
      'name', e.name, 'entityType', e.entityType, 'entityId', e.entityId, 'receivedAt', now, 'raw', e.raw,
      'duplicates', 0, 'handlers', e.handlers)
    if id == e.key then redis.call('HSET', key, 'lastId', id, 'lastAt', now) end
    redis.call('ZADD', p .. 'events', seq, id)
    if e.handlers == '[]' then redis.call('ZADD', p .. 'unrouted', seq, id) end
    if e.pushedTask == '1' then
      local pushed = p .. 'pushed:' .. e.tenant
      redis.call('ZADD', pushed, now, e.entityId)
      redis.call('ZREMRANGEBYSCORE', pushed, '-inf', '(' .. (now - 604800000))
    end
    out[i] = {id, 0, e.handlers, tostring(seq)}
  end
end
return cjson.encode(out)
