"""The one background-loop helper: it runs its step on time and when woken, survives a failing step,
and stops even when the step swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from app.core.tasks import Loop
from tests.support import apoll


async def test_steps_run_on_their_interval_and_a_failure_does_not_end_the_loop() -> None:
    runs: list[int] = []
    errors: list[Exception] = []

    async def step() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("one bad step")

    loop = Loop("test", step, 0.01, on_error=errors.append)
    loop.start()
    await apoll(lambda: len(runs) >= 4, timeout=5, message="four steps")
    await loop.stop()
    assert [str(e) for e in errors] == ["one bad step"] and not loop.running


async def test_wake_runs_the_step_without_waiting_for_the_interval() -> None:
    ran = asyncio.Event()

    async def step() -> None:
        ran.set()

    loop = Loop("test", step, None)  # no interval: only a wake runs it
    loop.start()
    await asyncio.sleep(0)
    assert not ran.is_set()
    loop.wake()
    await asyncio.wait_for(ran.wait(), timeout=5)
    await loop.stop()


async def test_stop_ends_a_loop_whose_step_swallowed_the_cancellation() -> None:
    entered = asyncio.Event()

    async def stubborn() -> None:
        entered.set()
        # As asyncio.wait_for can on Python 3.11 when its timeout fires at the same moment:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)

    loop = Loop("test", stubborn, 0)
    loop.start()
    await entered.wait()
    await asyncio.wait_for(loop.stop(), timeout=5)
    assert not loop.running
