"""Bounded in-process memory for the key check: an expiring cache and a per-address failure counter.

Both are bounded by evicting their oldest entries one at a time. Flushing a full cache whole (as the key
cache once did) let a flood of random keys empty it, and every live key then cost a database lookup at
once: the attack would have paid for itself.
"""

from __future__ import annotations

import math
import time
from typing import Generic, TypeVar

from app.core.errors import RateLimited

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
    gets 429 before its next lookup. Per process: with N web processes an address gets up to N × limit
    lookups a window, still a bounded cost, and no Redis round trip on the way to the database."""

    MAX_ADDRESSES = 100_000

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._counts: ExpiringCache[list[float]] = ExpiringCache(self.MAX_ADDRESSES, window_seconds)

    def check(self, address: str | None, now: float | None = None) -> None:
        """Raise 429 when `address` used up its failed lookups of the current window."""
        if address is None or self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        found, count = self._counts.get(address, now)
        if found and count is not None and count[0] >= self.limit:
            retry = max(1, math.ceil(count[1] - now))
            raise RateLimited(
                "Too many requests with invalid API keys from your address. "
                f"Please check your key, and retry after {retry} seconds.",
                code="too_many_invalid_keys",
                headers={"retry-after": str(retry)},
            )

    def failed(self, address: str | None, now: float | None = None) -> None:
        if address is None or self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        found, count = self._counts.get(address, now)
        if found and count is not None:
            count[0] += 1
        else:
            # [failures, window end]; the entry expires with its window.
            self._counts.put(address, [1.0, now + self.window], now)
