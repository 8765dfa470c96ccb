"""Upstream deadlines (first byte, idle between chunks, total) without a timer per chunk.

`asyncio.timeout` around every streamed chunk costs about 5 µs a chunk (a timer armed and cancelled
each time), several times the cost of relaying the chunk. Instead each upstream attempt registers a
`Watch`: a few attributes the relaying task sets as it starts and stops waiting. One reaper task per
process looks at all watches every `TICK` seconds and cancels a task that waited too long; the waiting
code turns that cancellation into `UpstreamTimeout`. A limit therefore fires up to `TICK` late, which
is nothing next to limits of seconds.

A cancellation is ours only when the watch fired it: `Task.uncancel()` takes it back, so a client
disconnect (a cancellation of its own) still propagates untouched.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from app.core.tasks import Loop
from app.core.upstream_errors import UpstreamTimeout

TICK = 0.05
_monotonic = time.monotonic


class Watch:
    """One upstream attempt's deadlines. Also a context manager for a single bounded wait:
    `with reaper.bounded(seconds, "total"): await call()`."""

    __slots__ = ("_watches", "deadline", "fired", "limit", "phase", "task", "waiting_since")

    def __init__(self, watches: set[Watch], limit: float, total: float, phase: str) -> None:
        self._watches = watches
        self.limit = limit
        """Longest single wait (first byte, then idle between chunks)."""
        self.deadline = _monotonic() + total
        self.phase = phase
        self.task: asyncio.Task[object] | None = None
        self.waiting_since: float | None = None
        self.fired: str | None = None
        watches.add(self)

    def release(self) -> None:
        self._watches.discard(self)

    def __enter__(self) -> Watch:
        self.start_waiting()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._watches.discard(self)
        if exc_type is asyncio.CancelledError:
            timeout = self.timed_out()
            if timeout is not None:
                raise timeout from None
            return
        self.stop_waiting()

    def start_waiting(self) -> None:
        now = _monotonic()
        if now >= self.deadline:
            raise UpstreamTimeout("Upstream timed out waiting for the end of the answer.", reason="total")
        self.task = asyncio.current_task()
        self.waiting_since = now

    def stop_waiting(self) -> None:
        self.waiting_since = None
        if self.fired is not None:
            # Fired as the awaited result arrived and the code swallowed the cancellation: take it back.
            self._take_back()
            self.fired = None

    def overdue(self, now: float) -> str | None:
        since = self.waiting_since
        if since is None:
            return None
        if now >= self.deadline:
            return "total"
        if now - since >= self.limit:
            return self.phase
        return None

    def timed_out(self) -> UpstreamTimeout | None:
        """After a CancelledError in a watched wait: the timeout it stands for, or None (not ours)."""
        self.waiting_since = None
        reason, self.fired = self.fired, None
        if reason is None or not self._take_back():
            return None
        seconds = {"first_byte": "first byte", "idle": "next chunk", "total": "end of the answer"}.get(reason, reason)
        return UpstreamTimeout(f"Upstream timed out waiting for the {seconds}.", reason=reason)

    def _take_back(self) -> bool:
        """Undo our cancellation; False when the task was cancelled by someone else as well."""
        task = self.task
        return task is not None and task.uncancel() == 0


class Reaper:
    def __init__(self, tick: float = TICK) -> None:
        self._watches: set[Watch] = set()
        # A reaper that died would leave every later stall unbounded: a failing sweep is logged, and the
        # loop goes on.
        self._loop = Loop("deadline-reaper", self._sweep_now, tick)

    def watch(self, limit: float, total: float, phase: str) -> Watch:
        return Watch(self._watches, limit, total, phase)

    def bounded(self, limit: float, phase: str) -> Watch:
        """`with reaper.bounded(s, "total"): await call()`: one wait of at most `s` seconds."""
        return Watch(self._watches, limit, limit, phase)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _sweep_now(self) -> None:
        if self._watches:
            self.sweep(_monotonic())

    def sweep(self, now: float) -> None:
        for w in self._watches:
            if w.fired is None and (reason := w.overdue(now)) is not None and w.task is not None:
                w.fired = reason
                w.task.cancel()
