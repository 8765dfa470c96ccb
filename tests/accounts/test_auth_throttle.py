"""Random keys: unknown keys are remembered without evicting live ones, and an address whose lookups
keep failing is refused (429) before it costs another database query."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from app.accounts.auth import KeyAuthenticator
from app.accounts.limits import Limits
from app.accounts.service import generate_key
from app.accounts.throttle import ExpiringCache
from app.core.db import SessionMaker
from app.core.errors import AuthenticationFailed, RateLimited
from app.core.settings import Settings
from tests.conftest import Tenant

LIMITS = Limits(1, 1, 1, 1)


def counting(auth: KeyAuthenticator) -> list[str]:
    loads: list[str] = []
    real = auth._load

    async def counted(digest: str) -> Any:
        loads.append(digest)
        return await real(digest)

    auth._load = counted  # type: ignore[method-assign]
    return loads


def shared(sessionmaker: SessionMaker, redis: Redis, prefix: str) -> KeyAuthenticator:
    """A web process's authenticator whose failure counts live in `redis` under `prefix`: 3 a minute."""
    return KeyAuthenticator(
        sessionmaker, 60, LIMITS, invalid_key_limit=3, invalid_key_window_seconds=60, redis=redis, redis_prefix=prefix
    )


async def test_an_address_trying_random_keys_is_throttled_before_the_database(
    sessionmaker: SessionMaker, tenant: Tenant
) -> None:
    auth = KeyAuthenticator(sessionmaker, 60, LIMITS, invalid_key_limit=3, invalid_key_window_seconds=60)
    loads = counting(auth)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(f"Bearer {generate_key()}", client="203.0.113.7")
    assert len(loads) == 3

    with pytest.raises(RateLimited) as refused:
        await auth.authenticate(f"Bearer {generate_key()}", client="203.0.113.7")
    error = refused.value
    assert error.status_code == 429 and error.code == "too_many_invalid_keys"
    assert error.body()["error"]["type"] == "rate_limit_exceeded"
    assert 1 <= int(error.headers["retry-after"]) <= 60
    # Refused before the lookup, even for a live key (its entry is not cached yet): the address pays nothing.
    with pytest.raises(RateLimited):
        await auth.authenticate(f"Bearer {tenant.key}", client="203.0.113.7")
    assert len(loads) == 3

    # Other addresses, and callers without one, are not affected.
    assert (await auth.authenticate(f"Bearer {tenant.key}", client="198.51.100.1")).key_id == tenant.key_id
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(f"Bearer {generate_key()}")
    # A cached key still passes from the throttled address: no lookup is needed for it.
    assert (await auth.authenticate(f"Bearer {tenant.key}", client="203.0.113.7")).key_id == tenant.key_id


async def test_the_window_ends(sessionmaker: SessionMaker) -> None:
    auth = KeyAuthenticator(sessionmaker, 60, LIMITS, invalid_key_limit=1, invalid_key_window_seconds=60)
    await auth.throttle.failed("192.0.2.1", now=1000.0)
    with pytest.raises(RateLimited):
        await auth.throttle.check("192.0.2.1", now=1030.0)
    await auth.throttle.check("192.0.2.1", now=1060.0)  # a new window


async def test_web_processes_share_one_count_per_address(
    sessionmaker: SessionMaker, tenant: Tenant, settings: Settings
) -> None:
    """Two web processes (two authenticators on one Redis) allow the limit between them, not twice it."""
    prefix = f"{settings.redis_prefix}throttle-{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(settings.redis_url)
    try:
        processes = [shared(sessionmaker, redis, prefix) for _ in range(2)]
        loads = [counting(auth) for auth in processes]
        for auth in (processes[0], processes[1], processes[0]):
            with pytest.raises(AuthenticationFailed):
                await auth.authenticate(f"Bearer {generate_key()}", client="203.0.113.9")
        for auth in processes:
            with pytest.raises(RateLimited) as refused:
                await auth.authenticate(f"Bearer {tenant.key}", client="203.0.113.9")
            assert 1 <= int(refused.value.headers["retry-after"]) <= 60
        assert [len(done) for done in loads] == [2, 1]
        # Another address is not affected on either process.
        assert (await processes[1].authenticate(f"Bearer {tenant.key}", client="198.51.100.9")).key_id == tenant.key_id
    finally:
        await redis.aclose()


async def test_an_unreachable_redis_falls_back_to_counting_in_process(sessionmaker: SessionMaker) -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    auth = KeyAuthenticator(sessionmaker, 60, LIMITS, invalid_key_limit=1, invalid_key_window_seconds=60, redis=redis)
    try:
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(f"Bearer {generate_key()}", client="192.0.2.77")
        with pytest.raises(RateLimited):
            await auth.authenticate(f"Bearer {generate_key()}", client="192.0.2.77")
    finally:
        await redis.aclose()


async def test_random_keys_never_evict_a_live_key(sessionmaker: SessionMaker, tenant: Tenant) -> None:
    auth = KeyAuthenticator(sessionmaker, 60, LIMITS)
    auth._unknown.max_entries = 5
    loads = counting(auth)
    await auth.authenticate(f"Bearer {tenant.key}")
    randoms = [f"Bearer {generate_key()}" for _ in range(12)]
    for key in randoms:
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(key)
    assert len(auth._unknown) == 5
    await auth.authenticate(f"Bearer {tenant.key}")
    assert len(loads) == 13  # the live key was looked up once: the flood did not flush it
    # The unknown cache keeps the newest: the last random key costs nothing again, the first does.
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(randoms[-1])
    assert len(loads) == 13
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(randoms[0])
    assert len(loads) == 14


def test_the_cache_evicts_its_oldest_entries_one_at_a_time() -> None:
    cache: ExpiringCache[int] = ExpiringCache(max_entries=3, ttl=10)
    for i in range(5):
        cache.put(f"k{i}", i, now=float(i))
    assert len(cache) == 3
    assert cache.get("k0", 5.0) == (False, None) and cache.get("k1", 5.0) == (False, None)
    assert cache.get("k4", 5.0) == (True, 4)
    assert cache.get("k2", 12.0) == (False, None)  # expired


async def test_concurrent_lookups_from_one_address_read_the_shared_count_once(
    sessionmaker: SessionMaker, tenant: Tenant, settings: Settings
) -> None:
    """A busy key's cache entry expires under load: every request in flight misses at once. One read of
    the address's count serves them all (each used to make its own Redis round trip)."""
    redis = Redis.from_url(settings.redis_url)
    prefix = f"{settings.redis_prefix}throttle-{uuid.uuid4().hex[:8]}:"
    reads = 0
    real_pipeline = redis.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return real_pipeline(*args, **kwargs)

    redis.pipeline = pipeline  # type: ignore[method-assign]
    try:
        auth = shared(sessionmaker, redis, prefix)
        loads = counting(auth)
        found = await asyncio.gather(
            *(auth.authenticate(f"Bearer {tenant.key}", client="203.0.113.20") for _ in range(32))
        )
        assert {p.key_id for p in found} == {tenant.key_id}
        assert (reads, len(loads)) == (1, 1)
        # Another address reads its own count.
        auth.forget(f"Bearer {tenant.key}")
        await auth.authenticate(f"Bearer {tenant.key}", client="198.51.100.20")
        assert reads == 2
    finally:
        await redis.aclose()
