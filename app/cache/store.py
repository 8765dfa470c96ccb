"""The cache's entries in Redis: its own connection, by default a database index of its own.

Keeping the entries away from the limit counters, holds and balance mirrors is what makes eviction
safe: with `maxmemory-policy allkeys-lru` on the cache's database (or server), Redis may drop any
entry under memory pressure, and only entries (docs/caching.md). A Redis error never fails a request:
the request is answered from upstream, as if the cache were empty.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.cache.flights import Flights
from app.cache.keys import account_pattern
from app.cache.policy import CachePolicy
from app.core.settings import Settings

log = logging.getLogger("heytoken.cache")


def cache_redis_url(settings: Settings) -> str:
    """`cache_redis_url`, or the main Redis server with database index 1 (0 when it is already 1)."""
    if settings.cache_redis_url:
        return settings.cache_redis_url
    base, _, tail = settings.redis_url.partition("?")
    scheme, _, rest = base.partition("://")
    host, slash, db = rest.partition("/")
    index = 0 if slash and db == "1" else 1
    url = f"{scheme}://{host}/{index}"
    return f"{url}?{tail}" if tail else url


@dataclass(slots=True)
class CacheMetrics:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    """Requests that waited for an identical request in flight instead of calling the upstream."""
    stored_bytes: int = 0
    saved: int = 0
    """What the hits and coalesced requests would have cost (minor units), minus what they were charged."""
    errors: int = 0


class CacheStore:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.prefix = settings.redis_prefix
        self.max_entry = settings.cache_max_entry_bytes
        self.policy = CachePolicy(settings)
        self.flights = Flights()
        self.metrics = CacheMetrics()
        self._last_error_log = 0.0

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            self._error(exc)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        if len(value) > self.max_entry:
            return False
        try:
            await self.redis.set(key, value, ex=ttl)
        except (RedisError, OSError) as exc:
            self._error(exc)
            return False
        self.metrics.stored_bytes += len(value)
        return True

    async def delete_account(self, account_id: str) -> int:
        """Drop every entry of an account (not the shared ones of a model); returns how many."""
        deleted = 0
        batch: list[bytes] = []
        async for name in self.redis.scan_iter(match=account_pattern(self.prefix, account_id), count=1000):
            batch.append(name)
            if len(batch) >= 500:
                deleted += await self.redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await self.redis.unlink(*batch)
        return deleted

    def _error(self, exc: BaseException) -> None:
        self.metrics.errors += 1
        now = time.monotonic()
        if now - self._last_error_log > 5:
            self._last_error_log = now
            log.warning("cache.redis_error error=%r: answering without the cache", exc)

    async def aclose(self) -> None:
        await self.redis.aclose()
