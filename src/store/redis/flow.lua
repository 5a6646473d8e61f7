-- Ordered and debounced deliveries on Redis, for every instance (src/store/redis/flows.ts).
-- Ordered: each handler's key has a line, a list of job ids in the order received; only its head
-- runs, the others wait delayed (parked) and are promoted when the head is done or dead. A job
-- that is finished (or gone) leaves the head when anyone looks. Debounced: each key has a hash
-- {latest job, its event's seq, count, first}; a job that is not the latest when it is fetched is
-- finished as collapsed into it.
-- ARGV[1]: the operation; ARGV[2]: our keys' prefix ('hubex-router:'); ARGV[3]: BullMQ's job keys'
-- prefix ('hubex-router:deliveries:'); ARGV[4]: now (ms); ARGV[5]: the items, as JSON.
-- Answers a JSON list, one entry per item.
local op = ARGV[1]
local p = ARGV[2]
local jp = ARGV[3]
local now = tonumber(ARGV[4])
local items = cjson.decode(ARGV[5])
local out = {}

-- Whether a job is done with: finished (completed or failed) or deleted, and not being added.
local function over(job)
  if redis.call('EXISTS', jp .. job) == 0 then return redis.call('EXISTS', p .. 'joining:' .. job) == 0 end
  return redis.call('HEXISTS', jp .. job, 'finishedOn') == 1
end

-- A line and the set of its members (so that no look walks the list: LPOS is O(n), and a line of
-- many parked jobs is looked at often) live a week past their last touch: a line whose last job
-- finished on an instance that died before it was told does not stay for ever.
local WEEK = 7 * 86400000
local function touch(line)
  redis.call('PEXPIRE', line, WEEK)
  redis.call('PEXPIRE', line .. ':m', WEEK)
end

-- The line's head, once the jobs done with have left it.
local function head(line)
  while true do
    local h = redis.call('LINDEX', line, 0)
    if not h then return false end
    if not over(h) then return h end
    redis.call('LPOP', line)
    redis.call('SREM', line .. ':m', h)
  end
end

-- A job's place in its line, roughly (0: the head; a new job: how many wait before it; one
-- already in it and not the head: 1), joining it at the back when it is not in it.
local function place(line, job)
  local joined = redis.call('SADD', line .. ':m', job) == 1
  if joined then
    redis.call('RPUSH', line, job)
    redis.call('SET', p .. 'joining:' .. job, '1', 'PX', 60000)
  end
  touch(line)
  local h = head(line)
  if h == job then return 0 end
  if joined then return math.max(1, redis.call('LLEN', line) - 1) end
  return 1
end

for i, it in ipairs(items) do
  local key = p .. it.key
  if op == 'join' then
    -- Before the jobs are added: an ordered job's place (its delay follows), a debounced one's delay.
    if it.kind == 'order' then
      out[i] = place(key, it.job)
    else
      local first = tonumber(redis.call('HGET', key, 'first') or '')
      local due = now + it.periodMs
      if first then due = math.min(due, first + it.maxWaitMs) end
      out[i] = math.max(0, due - now)
    end
  elseif op == 'added' then
    -- The jobs are added: an ordered one that is the head now was parked for nothing (answers 1:
    -- promote it); a debounced one becomes its key's latest, unless a later event's is already.
    if it.kind == 'order' then
      redis.call('DEL', p .. 'joining:' .. it.job)
      out[i] = (head(key) == it.job and it.parked) and 1 or 0
    else
      local latest = tonumber(redis.call('HGET', key, 'seq') or '0')
      if latest < it.seq then
        redis.call('HSET', key, 'job', it.job, 'seq', it.seq)
        redis.call('HSETNX', key, 'first', now)
        redis.call('HINCRBY', key, 'count', 1)
        redis.call('PEXPIRE', key, 7 * 86400000)
      end
      out[i] = 0
    end
  elseif op == 'gate' then
    -- An ordered job fetched to run: 0 when it is the head, else its place (it waits).
    out[i] = place(key, it.job)
  elseif op == 'next' then
    -- After a job of the line finished: the head now (to promote), or ''.
    out[i] = head(key) or ''
  elseif op == 'take' then
    -- A debounced job fetched to run: {0, the latest job} when a later event's job is its key's
    -- latest, or has run already (it is collapsed into that one: an older event never runs after
    -- a newer one, a retry of it included); else {1, the events collapsed into it}, and the burst
    -- ends: the hash keeps the seq that ran ('taken'), and the next event starts a new burst.
    local latest = math.max(tonumber(redis.call('HGET', key, 'seq') or '0'), tonumber(redis.call('HGET', key, 'taken') or '0'))
    if latest > it.seq then
      out[i] = {0, redis.call('HGET', key, 'job')}
    else
      local count = tonumber(redis.call('HGET', key, 'count') or '1')
      redis.call('HDEL', key, 'first', 'count')
      redis.call('HSET', key, 'taken', it.seq)
      redis.call('PEXPIRE', key, 7 * 86400000)
      out[i] = {1, math.max(0, count - 1)}
    end
  end
end
return cjson.encode(out)
