-- Money moved in the database (top-up, adjustment, job capture or release) moves the mirror too,
-- if there is one; a missing mirror is loaded from the database on the next admission.
-- KEYS 1 bal:<acct>  2 seq:<acct>     ARGV 1 amount (signed)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
redis.call('INCR', KEYS[2])
return 1
