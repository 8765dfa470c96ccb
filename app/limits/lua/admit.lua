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
-- status: 0 admitted, 1 key denied, 2 account denied, 3 rate limited (detail = which),
--         4 no balance mirror, 5 insufficient balance

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function window(key, bucket_ms, buckets)
  -- Sum of the live buckets (deleting dead ones) and the newest live bucket (nil: none), plus what
  -- wait_for needs. No table per bucket and no sort: a key busy for a minute has 60 live buckets,
  -- and building and sorting them on every admission took 40 % of the script's time in Redis.
  local first = math.floor(now / bucket_ms) - buckets
  local fields = redis.call('HGETALL', key)
  local total, newest, dead = 0, nil, nil
  for i = 1, #fields, 2 do
    local idx = tonumber(fields[i])
    if idx < first then
      if dead then dead[#dead + 1] = fields[i] else dead = {fields[i]} end
    else
      total = total + tonumber(fields[i + 1])
      if newest == nil or idx > newest then newest = idx end
    end
  end
  if dead then redis.call('HDEL', key, unpack(dead)) end
  return total, newest, {fields = fields, first = first}
end

local function wait_for(live, total, cost, limit, bucket_ms, buckets)
  -- How long until enough old buckets leave the window for `cost` more to fit (a refusal only, so
  -- the buckets are read by index here, oldest first, rather than sorted on every admission).
  local counts = {}
  local fields = live.fields
  for i = 1, #fields, 2 do
    local idx = tonumber(fields[i])
    if idx >= live.first then counts[idx] = tonumber(fields[i + 1]) end
  end
  local freed = 0
  for idx = live.first, live.first + buckets do
    local n = counts[idx]
    if n then
      freed = freed + n
      if total - freed + cost <= limit then
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

local rpm_total, rpm_newest, rpm_live = window(KEYS[3], 1000, 60)
local tpm_total, tpm_newest, tpm_live = window(KEYS[5], 1000, 60)
local tpm_bucket = math.floor(now / 1000)

local function limited(name, retry)
  return {3, name, retry, rpm, math.max(0, rpm - rpm_total), reset_in(rpm_newest, 1000, 60),
          tpm, math.max(0, tpm - tpm_total), reset_in(tpm_newest, 1000, 60), 0, 0}
end

if mode == 'read' then
  if reads > 0 then
    local reads_total, _, reads_live = window(KEYS[11], 1000, 60)
    if reads_total + 1 > reads then
      return limited('reads_per_minute', wait_for(reads_live, reads_total, 1, reads, 1000, 60))
    end
    redis.call('HINCRBY', KEYS[11], tpm_bucket, 1)
    redis.call('PEXPIRE', KEYS[11], 62000)
  end
  return {0, '', 0, rpm, math.max(0, rpm - rpm_total), reset_in(rpm_newest, 1000, 60),
          tpm, math.max(0, tpm - tpm_total), reset_in(tpm_newest, 1000, 60), 0, 0}
end

if rpm > 0 and rpm_total + 1 > rpm then
  return limited('requests_per_minute', wait_for(rpm_live, rpm_total, 1, rpm, 1000, 60))
end
if rph > 0 then
  local rph_total, _, rph_live = window(KEYS[4], 60000, 60)
  if rph_total + 1 > rph then
    return limited('requests_per_hour', wait_for(rph_live, rph_total, 1, rph, 60000, 60))
  end
end
if tpm > 0 and tokens > 0 and tpm_total + tokens > tpm then
  return limited('tokens_per_minute', wait_for(tpm_live, tpm_total, tokens, tpm, 1000, 60))
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
redis.call('HINCRBY', KEYS[3], tpm_bucket, 1)
redis.call('PEXPIRE', KEYS[3], 62000)
if rph > 0 then
  redis.call('HINCRBY', KEYS[4], math.floor(now / 60000), 1)
  redis.call('PEXPIRE', KEYS[4], 3720000)
end
if tokens > 0 then
  redis.call('HINCRBY', KEYS[5], tpm_bucket, tokens)
  redis.call('PEXPIRE', KEYS[5], 62000)
  tpm_total = tpm_total + tokens
end
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
rpm_total = rpm_total + 1
-- The current bucket is now the newest of the windows just counted into.
rpm_newest = tpm_bucket
if tokens > 0 then tpm_newest = tpm_bucket end
return {0, '', 0, rpm, math.max(0, rpm - rpm_total), reset_in(rpm_newest, 1000, 60),
        tpm, math.max(0, tpm - tpm_total), reset_in(tpm_newest, 1000, 60), tpm_bucket, balance}
