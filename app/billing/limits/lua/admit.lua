-- Admission of one request, atomically, in one round trip: key and account check, rate limits and
-- (for paid models) the billing hold. Checks run first; nothing is counted or held unless all pass.
--
-- KEYS  1 deny:key:<key>      2 deny:acct:<acct>   3 rl:<key>:rpm   4 rl:<key>:rph   5 rl:<key>:tpm
--       6 rl:<key>:streams    7 bal:<acct>         8 hold:<job>     9 holds          10 inflight:<acct>
--       11 rl:<key>:reads
-- ARGV  1 job id   2 mode ("work" | "read")   3 rpm   4 rph   5 tpm   6 tokens to reserve
--       7 lease (0/1)   8 max streams   9 hold amount   10 hold ttl ms   11 lease ttl ms
--       12 account id   13 reads per minute
-- Limits of 0 are switched off. Windows are sliding, made of buckets (1 s for per-minute limits,
-- 60 s for per-hour); a bucket leaves the window one whole bucket late, so a limit is never exceeded
-- over any window of its length.
-- Returns {status, detail, retry_after_ms, rpm_limit, rpm_remaining, rpm_reset_ms,
--          tpm_limit, tpm_remaining, tpm_reset_ms, tpm_bucket, balance}
-- The same names, for app/limits/protocol.py (a test compares them):
-- KEYS: deny_key deny_account rpm rph tpm streams balance hold holds inflight reads
-- ARGV: job mode rpm rph tpm tokens lease max_streams hold hold_ttl lease_ttl account reads
-- RETURNS: status detail retry_after_ms rpm_limit rpm_remaining rpm_reset_ms tpm_limit tpm_remaining tpm_reset_ms tpm_bucket balance
-- status: 0 admitted, 1 key denied, 2 account denied, 3 rate limited (detail = which),
--         4 no balance mirror, 5 insufficient balance

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A window's hash holds its buckets (field = bucket index, value = count) and a cache of their sum:
-- field -2 the bucket it was computed in, -1 the sum, -3 the newest bucket. Within one
-- bucket no bucket leaves the window, so the cache holds until the next one begins: a busy key reads
-- three fields per admission instead of its 60 buckets (bench.redis_cost). The fields have negative
-- names, so a script that predates the cache sees them as buckets long gone and deletes them.
local function window(key, bucket_ms, buckets)
  local cur = math.floor(now / bucket_ms)
  local w = {key = key, first = cur - buckets, cur = cur, total = 0, newest = nil, cached = false}
  local cache = redis.call('HMGET', key, '-2', '-1', '-3')
  if tonumber(cache[1]) == cur and cache[2] then
    w.total, w.newest, w.cached = tonumber(cache[2]), tonumber(cache[3]), true
    return w
  end
  -- Recount: sum the live buckets, delete the dead ones (and the stale cache), cache the sum.
  local fields = redis.call('HGETALL', key)
  local dead = nil
  for i = 1, #fields, 2 do
    local idx = tonumber(fields[i])
    if idx < w.first then
      if dead then dead[#dead + 1] = fields[i] else dead = {fields[i]} end
    else
      w.total = w.total + tonumber(fields[i + 1])
      if w.newest == nil or idx > w.newest then w.newest = idx end
    end
  end
  if dead then redis.call('HDEL', key, unpack(dead)) end
  if w.newest ~= nil then
    -- Only beside live buckets: the hash keeps their expiry (a cache alone would have none).
    redis.call('HSET', key, '-2', cur, '-1', w.total, '-3', w.newest)
    w.cached = true
  end
  w.fields = fields
  return w
end

local function add(w, n, ttl)
  -- Count n into the current bucket and the cached sum. The expiry moves only for a new bucket: set
  -- then, it outlives that newest bucket's stay in the window.
  if redis.call('HINCRBY', w.key, w.cur, n) == n then redis.call('PEXPIRE', w.key, ttl) end
  if w.cached then
    redis.call('HINCRBY', w.key, '-1', n)
    if w.newest ~= w.cur then redis.call('HSET', w.key, '-3', w.cur) end
  else
    redis.call('HSET', w.key, '-2', w.cur, '-1', w.total + n, '-3', w.cur)
  end
  w.total, w.newest = w.total + n, w.cur
end

local function wait_for(w, cost, limit, bucket_ms, buckets)
  -- How long until enough old buckets leave the window for `cost` more to fit: a refusal only, so
  -- the buckets are read here (by index, oldest first) rather than on every admission.
  local counts = {}
  local fields = w.fields or redis.call('HGETALL', w.key)
  for i = 1, #fields, 2 do
    local idx = tonumber(fields[i])
    if idx >= w.first then counts[idx] = tonumber(fields[i + 1]) end
  end
  local freed = 0
  for idx = w.first, w.cur do
    local n = counts[idx]
    if n then
      freed = freed + n
      if w.total - freed + cost <= limit then
        return (idx + buckets + 1) * bucket_ms - now
      end
    end
  end
  return buckets * bucket_ms
end

local function reset_in(newest, bucket_ms, buckets)
  if newest == nil then return 0 end
  return (newest + buckets + 1) * bucket_ms - now
end

local job, mode = ARGV[1], ARGV[2]
local rpm, rph, tpm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens = tonumber(ARGV[6])
local lease, max_streams = tonumber(ARGV[7]), tonumber(ARGV[8])
local hold, hold_ttl, lease_ttl = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local account, reads = ARGV[12], tonumber(ARGV[13])

if redis.call('EXISTS', KEYS[1]) == 1 then return {1, 'key', 0, 0, 0, 0, 0, 0, 0, 0, 0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 'account', 0, 0, 0, 0, 0, 0, 0, 0, 0} end

local rpm_w = window(KEYS[3], 1000, 60)
local tpm_w = window(KEYS[5], 1000, 60)
local tpm_bucket = tpm_w.cur

local function limited(name, retry)
  return {3, name, retry, rpm, math.max(0, rpm - rpm_w.total), reset_in(rpm_w.newest, 1000, 60),
          tpm, math.max(0, tpm - tpm_w.total), reset_in(tpm_w.newest, 1000, 60), 0, 0}
end

if mode == 'read' then
  if reads > 0 then
    local reads_w = window(KEYS[11], 1000, 60)
    if reads_w.total + 1 > reads then
      return limited('reads_per_minute', wait_for(reads_w, 1, reads, 1000, 60))
    end
    add(reads_w, 1, 62000)
  end
  return {0, '', 0, rpm, math.max(0, rpm - rpm_w.total), reset_in(rpm_w.newest, 1000, 60),
          tpm, math.max(0, tpm - tpm_w.total), reset_in(tpm_w.newest, 1000, 60), 0, 0}
end

if rpm > 0 and rpm_w.total + 1 > rpm then
  return limited('requests_per_minute', wait_for(rpm_w, 1, rpm, 1000, 60))
end
local rph_w = nil
if rph > 0 then
  rph_w = window(KEYS[4], 60000, 60)
  if rph_w.total + 1 > rph then
    return limited('requests_per_hour', wait_for(rph_w, 1, rph, 60000, 60))
  end
end
if tpm > 0 and tokens > 0 and tpm_w.total + tokens > tpm then
  return limited('tokens_per_minute', wait_for(tpm_w, tokens, tpm, 1000, 60))
end
if lease == 1 and max_streams > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
  if redis.call('ZCARD', KEYS[6]) >= max_streams then
    -- A slot frees when any stream ends, which nobody can predict: suggest a short retry.
    return limited('concurrent_streams', 1000)
  end
end
local balance = 0
if hold > 0 then
  local current = redis.call('GET', KEYS[7])
  if not current then return {4, 'balance', 0, 0, 0, 0, 0, 0, 0, 0, 0} end
  balance = tonumber(current)
  if balance < hold then return {5, 'balance', 0, 0, 0, 0, 0, 0, 0, 0, balance} end
end

-- Every check passed: count, reserve, lease and hold.
add(rpm_w, 1, 62000)
if rph_w then add(rph_w, 1, 3720000) end
if tokens > 0 then add(tpm_w, tokens, 62000) end
if lease == 1 and max_streams > 0 then
  redis.call('ZADD', KEYS[6], now + lease_ttl, job)
  redis.call('PEXPIRE', KEYS[6], lease_ttl + 1000)
end
if hold > 0 then
  balance = redis.call('DECRBY', KEYS[7], hold)
  redis.call('HSET', KEYS[8], 'account', account, 'amount', hold)
  redis.call('PEXPIRE', KEYS[8], hold_ttl + 3600000)
  redis.call('ZADD', KEYS[9], now + hold_ttl, job)
  redis.call('INCR', KEYS[10])
end
return {0, '', 0, rpm, math.max(0, rpm - rpm_w.total), reset_in(rpm_w.newest, 1000, 60),
        tpm, math.max(0, tpm - tpm_w.total), reset_in(tpm_w.newest, 1000, 60), tpm_bucket, balance}
