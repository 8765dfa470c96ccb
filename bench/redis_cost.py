"""What the hot path costs Redis: server-side µs per admission and per settlement, by how full the
per-minute windows are.

    python -m bench.redis_cost [--calls N] [--buckets 0,10,60]

Every web process shares one Redis, and Redis runs one script at a time, so these figures set how
many requests one Redis admits per second, whatever the number of gateways. A key that has been busy
for a minute has all 60 one-second buckets of its RPM and TPM windows live. Redis's own accounting
(`INFO commandstats`, deltas only: nothing is reset) makes the figures independent of the client and
of the network. Runs the app's Gate on a throwaway key prefix of HEYTOKEN_REDIS_URL's Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from redis.asyncio import Redis

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.api.resources import create_redis
from app.billing.limits.service import Admission, Gate
from app.core.settings import Settings


async def evalsha_usec(redis: Redis) -> tuple[int, int]:
    stats = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


async def measure(settings: Settings, buckets: int, calls: int) -> tuple[float, float]:
    redis = create_redis(settings)
    gate = Gate(redis, settings)
    who = Principal(
        f"key_{uuid.uuid4().hex[:10]}",
        f"acct_{uuid.uuid4().hex[:10]}",
        "active",
        "default",
        Limits(rpm=10**9, rph=10**9, tpm=10**12, max_streams=0),
    )
    try:
        seconds, _ = await redis.time()
        if buckets:
            await redis.hset(
                gate.key("rl", who.key_id, "rpm"), mapping={seconds - i: 10 for i in range(1, buckets + 1)}
            )
            await redis.hset(
                gate.key("rl", who.key_id, "tpm"), mapping={seconds - i: 9000 for i in range(1, buckets + 1)}
            )
        await redis.set(gate.balance_key(who.account_id), 10**15)
        before = await evalsha_usec(redis)
        admissions: list[Admission] = []
        for i in range(calls):
            admissions.append(await gate.admit(who, f"job{i}", tokens=900, hold=1000))
        after_admit = await evalsha_usec(redis)
        for start in range(0, calls, 50):
            await gate.settle_many([(adm, 850, 950, "apply") for adm in admissions[start : start + 50]])
        after_settle = await evalsha_usec(redis)
        admit = (after_admit[1] - before[1]) / max(1, after_admit[0] - before[0])
        settle = (after_settle[1] - after_admit[1]) / max(1, after_settle[0] - after_admit[0])
        return admit, settle
    finally:
        keys = [key async for key in redis.scan_iter(f"{settings.redis_prefix}*")]
        for start in range(0, len(keys), 500):
            await redis.delete(*keys[start : start + 500])
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="admissions (and settlements) per measurement")
    parser.add_argument("--buckets", default="0,10,60", help="live one-second buckets per window, comma-separated")
    args = parser.parse_args(argv)
    print("live buckets | admission µs (Redis CPU) | settlement µs | requests/s one Redis core can admit and settle")
    for buckets in (int(b) for b in args.buckets.split(",")):
        settings = Settings(_env_file=None, redis_prefix=f"ht-bench-redis-{uuid.uuid4().hex[:8]}:")
        admit, settle = asyncio.run(measure(settings, buckets, args.calls))
        print(f"{buckets:>12} | {admit:>24.1f} | {settle:>13.1f} | {1e6 / (admit + settle):>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
