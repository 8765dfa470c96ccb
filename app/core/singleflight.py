"""One call per key at a time: callers that arrive while it runs share its result (or its error).

For reads that every in-flight request would otherwise repeat at the same moment: an API key whose
cached entry expired under load, a balance mirror missing after a Redis restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """`call()`'s result, running it only if no call of `key` is in flight."""
        task = self._flights.get(key)
        if task is None:
            task = self._flights[key] = asyncio.ensure_future(call())
            task.add_done_callback(lambda done: self._landed(key, done))
        # Shielded: a caller that goes away (client disconnect) does not cancel the others' call.
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Future[V]) -> None:
        self._flights.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone (no "never retrieved" log)
