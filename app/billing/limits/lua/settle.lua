-- Settlement of one request after its answer (and after its job row and capture are committed):
-- reconcile the token reservation with the real usage, free the stream lease, end the hold.
-- Idempotent: a hold already ended (or lost with Redis) moves no money.
--
-- KEYS  1 rl:<key>:tpm   2 rl:<key>:streams   3 hold:<job>   4 holds   5 bal:<acct>
--       6 inflight:<acct>   7 seq:<acct>
-- ARGV  1 job id   2 tpm bucket of the reservation   3 tokens reserved   4 tokens used
--       5 cost to capture   6 hold mode: "apply" (give back hold − cost) | "durable" (the database
--       now carries the hold: drop the Redis record, leave the balance)
-- The same names, for app/limits/protocol.py (a test compares them):
-- KEYS: tpm streams hold holds balance inflight seq
-- ARGV: job bucket reserved used cost mode
local job = ARGV[1]
local bucket, reserved, used = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local cost, mode = tonumber(ARGV[5]), ARGV[6]

local function recount(idx, n)
  -- Keep the window's cached sum (admit.lua) true: a bucket it counts changed by n.
  local cache = redis.call('HMGET', KEYS[1], '-2', '-3')
  local at = tonumber(cache[1])
  if at and idx >= at - 60 then
    redis.call('HINCRBY', KEYS[1], '-1', n)
    local newest = tonumber(cache[2])
    if newest == nil or idx > newest then redis.call('HSET', KEYS[1], '-3', idx) end
  end
end

if reserved > 0 or used > 0 then
  local delta = used - reserved
  if redis.call('HEXISTS', KEYS[1], bucket) == 1 then
    local count = redis.call('HINCRBY', KEYS[1], bucket, delta)
    if count < 0 then
      redis.call('HSET', KEYS[1], bucket, 0)
      delta = delta - count
    end
    recount(tonumber(bucket), delta)
  elseif delta > 0 then
    -- The reservation's bucket has left the window; an overrun still counts, now.
    local now = math.floor(tonumber(redis.call('TIME')[1]))
    redis.call('HINCRBY', KEYS[1], now, delta)
    redis.call('PEXPIRE', KEYS[1], 62000)
    recount(now, delta)
  end
end
redis.call('ZREM', KEYS[2], job)

local amount = redis.call('HGET', KEYS[3], 'amount')
if not amount then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], job)
if mode == 'apply' and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('INCRBY', KEYS[5], tonumber(amount) - cost)
end
if redis.call('DECR', KEYS[6]) < 0 then redis.call('SET', KEYS[6], 0) end
redis.call('INCR', KEYS[7])
return 1
