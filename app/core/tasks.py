"""The one background-loop helper: every periodic task of a process (catalog refresh, cooldown sync,
lease refresh, billing reconciler, deadline reaper, job log, job-log preview) runs on a `Loop`.

A loop waits `interval` seconds (a number, or a function read before each wait; None waits for `wake()`
alone), or less when woken, then runs its step. A step that raises goes to `on_error` and the loop goes
on: a background task that died would leave its job undone for the rest of the process's life.

`stop()` sets a flag as well as cancelling: on Python 3.11 `asyncio.wait_for` (asyncpg's connect
timeout, redis-py's) can swallow a cancellation that lands as its own timeout fires, and a loop that
relied on the cancellation alone then ran on while shutdown waited for it forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("heytoken.tasks")

Interval = float | Callable[[], float | None] | None


class Loop:
    __slots__ = ("_interval", "_name", "_on_error", "_step", "_stopping", "_task", "_wake")

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        interval: Interval,
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._name = name
        self._step = step
        self._interval = interval
        self._on_error = on_error or self._log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self._name)

    def wake(self) -> None:
        """Run the step now rather than at the end of the wait."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            interval = self._interval() if callable(self._interval) else self._interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._step()
            except Exception as exc:
                self._on_error(exc)

    def _log(self, exc: Exception) -> None:
        log.error("tasks.step_failed task=%s", self._name, exc_info=exc)
