"""Bounded memory for the key check: an expiring cache, and a per-address failure counter (in Redis,
shared by every web process, with an in-process fallback).

Both are bounded by evicting their oldest entries one at a time. Flushing a full cache whole (as the key
cache once did) let a flood of random keys empty it, and every live key then cost a database lookup at
once: the attack would have paid for itself.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.errors import RateLimited
from app.core.singleflight import SingleFlight

log = logging.getLogger(__name__)

V = TypeVar("V")


class ExpiringCache(Generic[V]):
    """At most `max_entries` values, each for `ttl` seconds. Entries are kept in insertion order, which,
    with one TTL for all, is also expiry order: the first entry is always the oldest."""

    def __init__(self, max_entries: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str, now: float) -> tuple[bool, V | None]:
        """(found, value) for a live entry; an expired one is dropped."""
        hit = self._entries.get(key)
        if hit is None:
            return False, None
        if hit[0] <= now:
            self._entries.pop(key, None)
            return False, None
        return True, hit[1]

    def put(self, key: str, value: V, now: float) -> None:
        entries = self._entries
        entries.pop(key, None)  # re-inserted at the end: its place in the order is its new expiry
        while len(entries) >= self.max_entries:
            del entries[next(iter(entries))]
        entries[key] = (now + self.ttl, value)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class FailureThrottle:
    """Failed key lookups per client address in fixed windows; past `limit` in a window, the address
    gets 429 before its next lookup.

    With `redis`, the count is shared by every web process (one GET before a lookup the caches could
    not answer, one INCR after a failed one: both beside a database query, never on a cached key's
    path), so N processes allow the limit, not N × the limit. Concurrent checks of one address share
    one read: when a busy key's cache entry expires, all its in-flight requests miss at once, and each
    used to read the count (the bench at 32 connections: 32 reads per expiry, the pool opening a Redis
    connection for most of them). Without it, or while Redis is unreachable, each process counts on
    its own: still a bounded cost, and the key check never fails because the throttle could not count."""

    MAX_ADDRESSES = 100_000

    def __init__(self, limit: int, window_seconds: float, *, redis: Redis | None = None, key_prefix: str = "") -> None:
        self.limit = limit
        self.window = window_seconds
        self._redis = redis
        self._prefix = key_prefix + "badkey:"
        self._counts: ExpiringCache[list[float]] = ExpiringCache(self.MAX_ADDRESSES, window_seconds)
        self._reading: SingleFlight[str, tuple[int, int] | None] = SingleFlight()

    async def check(self, address: str | None, now: float | None = None) -> None:
        """Raise 429 when `address` used up its failed lookups of the current window."""
        if address is None or self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        if self._redis is not None:
            shared = await self._reading.run(address, lambda: self._shared_count(address))
            if shared is not None:
                count, retry = shared
                if count >= self.limit:
                    raise _too_many(retry)
                return
        found, entry = self._counts.get(address, now)
        if found and entry is not None and entry[0] >= self.limit:
            raise _too_many(max(1, math.ceil(entry[1] - now)))

    async def failed(self, address: str | None, now: float | None = None) -> None:
        if address is None or self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        if self._redis is not None:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.incr(self._prefix + address)
                    # NX: the window starts at the first failure and is not pushed back by later ones.
                    pipe.expire(self._prefix + address, max(1, math.ceil(self.window)), nx=True)
                    await pipe.execute()
                return
            except RedisError as exc:
                log.warning("auth.throttle_unshared reason=%r: counting failed key lookups in this process", exc)
        found, entry = self._counts.get(address, now)
        if found and entry is not None:
            entry[0] += 1
        else:
            # [failures, window end]; the entry expires with its window.
            self._counts.put(address, [1.0, now + self.window], now)

    async def _shared_count(self, address: str) -> tuple[int, int] | None:
        """(failures, seconds left in the window) from Redis; None when Redis cannot answer."""
        assert self._redis is not None
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._prefix + address)
                pipe.ttl(self._prefix + address)
                raw, ttl = await pipe.execute()
        except RedisError as exc:
            log.warning("auth.throttle_unshared reason=%r: counting failed key lookups in this process", exc)
            return None
        return int(raw or 0), max(1, int(ttl))


def _too_many(retry: int) -> RateLimited:
    return RateLimited(
        "Too many requests with invalid API keys from your address. "
        f"Please check your key, and retry after {retry} seconds.",
        code="too_many_invalid_keys",
        headers={"retry-after": str(retry)},
    )
