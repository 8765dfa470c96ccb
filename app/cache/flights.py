"""Coalescing: identical cacheable requests that arrive while the first is still upstream wait for it.

A `Flight` is the first request's answer in the making: the decoded chunks of a streamed answer as
they arrive (streams fan out to every waiter), then the whole answer, or the error every waiter gets.
A streamed answer is pumped by a task of its own, not by the first client's connection: any client,
the first one included, may leave without cutting the others off; the upstream is closed only when
the last listener has gone.

Per process: requests that land on other web processes call the upstream themselves (and the first
answer stored serves every later one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from anyio import CancelScope


class Abandoned(Exception):
    """The first request stopped before it went upstream (its own limits refused it): start over."""


class Flight:
    __slots__ = ("_changed", "chunks", "done", "error", "frames", "listeners", "result", "task")

    def __init__(self) -> None:
        self.chunks: list[dict[str, Any]] = []
        """The upstream's chunk payloads of a streamed answer, decoded, in order."""
        self.frames: list[bytes] = []
        """The first request's own SSE frames (its ids, its cost)."""
        self.result: Any = None
        """The whole answer, once done without error (what is stored)."""
        self.error: BaseException | None = None
        self.done = False
        self.listeners = 0
        self.task: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self) -> None:
        """Wait for the next chunk, frame or the end (check the state first: no await in between)."""
        await self._changed.wait()

    def add_chunk(self, chunk: dict[str, Any]) -> None:
        self.chunks.append(chunk)
        self._notify()

    def finish(self, result: Any) -> None:
        self.result, self.done = result, True
        self._notify()

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self.error, self.done = error, True
            self._notify()

    async def outcome(self) -> Any:
        """The whole answer, or raise the error every waiter shares."""
        while not self.done:
            await self.changed()
        if self.error is not None:
            raise self.error
        return self.result

    def join(self) -> None:
        self.listeners += 1

    def leave(self) -> None:
        self.listeners -= 1
        if self.listeners <= 0 and not self.done and self.task is not None:
            self.task.cancel()  # nobody is listening any more: close the upstream

    def pump(self, frames: AsyncIterator[bytes], end: Callable[[], Awaitable[None]]) -> None:
        """Relay `frames` (the first request's SSE) into this flight; `end` decides finish or fail."""

        async def run() -> None:
            try:
                async for frame in frames:
                    self.frames.append(frame)
                    self._notify()
            except BaseException as exc:
                self.fail(exc)
                raise
            finally:
                aclose = getattr(frames, "aclose", None)
                if aclose is not None:
                    with CancelScope(shield=True):
                        await aclose()
            await end()

        self.task = asyncio.ensure_future(run())
        # Retrieved here: the last listener may have gone (no "exception never retrieved" log).
        self.task.add_done_callback(lambda task: None if task.cancelled() else task.exception())

    async def own_frames(self) -> AsyncIterator[bytes]:
        """The first request's stream, read from the flight (its leaving cancels nothing of the others');
        the caller joined the flight for it."""
        try:
            i = 0
            while True:
                while i < len(self.frames):
                    i += 1
                    yield self.frames[i - 1]
                if self.done:
                    return
                await self.changed()
        finally:
            self.leave()


class Flights:
    """The flights of this process, by cache key."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}

    def get(self, key: str) -> Flight | None:
        return self._flights.get(key)

    def lead(self, key: str) -> Flight:
        flight = self._flights[key] = Flight()
        return flight

    def land(self, key: str, flight: Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def __len__(self) -> int:
        return len(self._flights)


async def cancel_quietly(task: asyncio.Future[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
