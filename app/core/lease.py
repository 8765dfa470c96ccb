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
    event loop would wait on each other's lock)."""
    stop = asyncio.Event()

    async def beat() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), lease_seconds / 3)
            if stop.is_set():
                return
            try:
                if not await renew():
                    return
            except Exception:
                # A missed beat (a database hiccup): the next one may land before the lease lapses.
                log.warning("lease.renew_failed", exc_info=True)

    task = asyncio.create_task(beat(), name="lease-heartbeat")
    try:
        yield
    finally:
        stop.set()
        await task
