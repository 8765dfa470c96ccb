"""Under memory pressure the cache's own Redis evicts cache entries, never a limit counter or a hold:
with the cache on a Redis of its own (HEYTOKEN_CACHE_REDIS_URL) that has a tight `maxmemory` and
`allkeys-lru`, the admission's keys in the main Redis are untouched however much is cached."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.api.resources import create_cache, create_redis
from app.billing.limits.service import Gate
from app.cache.store import cache_redis_url
from app.core.settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")


@pytest.fixture
def tight_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the test's own: 2 MB, least recently used keys evicted first."""
    port = free_port()
    directory = tmp_path_factory.mktemp("tight-redis")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--maxmemory", "2mb"]
    command += ["--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no", "--dir", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            if Redis.from_url(url).ping():
                break
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(10)


async def test_cache_load_on_a_tight_redis_never_evicts_limits_or_holds(settings: Settings, tight_redis: str) -> None:
    configured = settings.model_copy(update={"cache_redis_url": tight_redis, "cache_max_entry_bytes": 1 << 20})
    assert cache_redis_url(configured) == tight_redis
    main = create_redis(configured)
    gate = Gate(main, configured)
    cache = create_cache(configured)
    account, key = f"acct_{uuid.uuid4().hex[:12]}", f"key_{uuid.uuid4().hex[:12]}"
    principal = Principal(key, account, "active", "default", Limits(100, 1000, 100_000, 10))

    async def balance(_: str) -> int:
        return 1_000_000

    try:
        # A streamed request in flight: its hold, its stream lease, its RPM/TPM counters, the mirror.
        job = f"chatcmpl-{uuid.uuid4().hex}"
        admission = await gate.admit(principal, job, tokens=500, lease=True, hold=700, load_balance=balance)
        assert admission.hold == 700
        held = [gate.key("hold", job), gate.key("rl", key, "rpm"), gate.key("rl", key, "tpm")]
        held += [gate.key("rl", key, "streams"), gate.balance_key(account), gate.key("holds")]
        assert await main.exists(*held) == len(held)

        # Cache load: 10 MB of entries into a 2 MB Redis.
        for i in range(200):
            await cache.put(f"{configured.redis_prefix}cache:{account}:chat:{i}", bytes([i % 256]) * 50_000, 600)
        tight = Redis.from_url(tight_redis)
        assert int(tight.info("stats")["evicted_keys"]) > 0
        assert tight.dbsize() < 200
        assert await cache.get(f"{configured.redis_prefix}cache:{account}:chat:199") is not None  # newest stays
        assert await cache.get(f"{configured.redis_prefix}cache:{account}:chat:0") is None  # oldest went

        # Every key of the admission is still there, and the hold still settles into the balance.
        assert await main.exists(*held) == len(held)
        assert int(await main.get(gate.balance_key(account))) == 1_000_000 - 700
        await gate.settle_many([(admission, 100, 300, "apply")])
        assert int(await main.get(gate.balance_key(account))) == 1_000_000 - 300
    finally:
        await main.delete(gate.balance_key(account), gate.key("rl", key, "rpm"), gate.key("rl", key, "tpm"))
        await cache.aclose()
        await main.aclose()
