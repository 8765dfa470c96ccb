-- Set the mirror to the database balance, but only if nothing could have moved in between: no hold in
-- flight, and no settlement or credit since the caller read `seq` (read before the database balance).
-- KEYS 1 bal:<acct>  2 inflight:<acct>  3 seq:<acct>    ARGV 1 seq read before   2 database balance
local inflight = tonumber(redis.call('GET', KEYS[2]) or '0')
local seq = redis.call('GET', KEYS[3]) or '0'
if inflight > 0 or seq ~= ARGV[1] then return 0 end
local current = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
if current and current ~= ARGV[2] then return 2 end
return 1
