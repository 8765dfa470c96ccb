-- Holds whose process never settled them (it crashed): drop them. The mirror keeps the amount held
-- until the account is quiet and resync sets it from the database, where no hold was ever written.
-- KEYS 1 holds    ARGV 1 prefix   2 max holds to expire in this call
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000
local jobs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(jobs) do
  local account = redis.call('HGET', ARGV[1] .. 'hold:' .. job, 'account')
  redis.call('DEL', ARGV[1] .. 'hold:' .. job)
  redis.call('ZREM', KEYS[1], job)
  if account then
    local key = ARGV[1] .. 'inflight:' .. account
    if redis.call('DECR', key) < 0 then redis.call('SET', key, 0) end
  end
end
return jobs
