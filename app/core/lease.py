"""The heartbeat that keeps a running step's lease alive.

A worker claims a job step or a webhook attempt by pushing its due time a short lease ahead
(`step_lease_seconds`), then renews that lease every third of it while the step's slow part (the
upstream call, the download and upload, the POST to a receiver) runs. A live worker keeps its step
however long it takes; a dead one stops renewing, so its step is due again within one lease and the
reconciler hands it to another worker. A short fixed lease without renewal would have to outlast the
slowest step, which is what made a crashed worker's job wait a minute or more.

The renewal is a write guarded by the claim's version that leaves the version alone: the step's own
final compare-and-set still sees the version it claimed, and a renewal that finds the row changed
(taken over, cancelled) stops the heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("heytoken.lease")


@contextlib.asynccontextmanager
async def heartbeat(renew: Callable[[], Awaitable[bool]], lease_seconds: float) -> AsyncIterator[None]:
    """Call `renew` every third of the lease while the block runs; stop when it returns False.

    On exit the heartbeat is stopped, not cancelled: a renewal in flight finishes its transaction
    first, so the step's next write never races one (on SQLite, two writers of one process on one
    event loop would wait on each other's lock). Until the first third of the lease has passed there
    is only a timer: most steps end before it (a task waiting from the start cost each step ~2 % of
    its CPU on the jobs bench; issue #23)."""
    loop = asyncio.get_running_loop()
    interval = lease_seconds / 3
    stop = asyncio.Event()
    beating: list[asyncio.Task[None]] = []

    async def beat() -> None:
        while not stop.is_set():
            try:
                if not await renew():
                    return
            except Exception:
                # A missed beat (a database hiccup): the next one may land before the lease lapses.
                log.warning("lease.renew_failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def start() -> None:
        beating.append(loop.create_task(beat(), name="lease-heartbeat"))

    timer = loop.call_later(interval, start)
    try:
        yield
    finally:
        timer.cancel()
        stop.set()
        if beating:
            await beating[0]
