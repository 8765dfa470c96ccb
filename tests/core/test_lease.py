"""The lease heartbeat (app/core/lease.py): renewals every third of the lease while a step works."""

from __future__ import annotations

import asyncio

from app.core.lease import heartbeat


async def test_a_step_shorter_than_a_third_of_its_lease_renews_nothing() -> None:
    renewals: list[float] = []

    async def renew() -> bool:
        renewals.append(asyncio.get_running_loop().time())
        return True

    before = len(asyncio.all_tasks())
    async with heartbeat(renew, lease_seconds=3.0):
        await asyncio.sleep(0.05)
    assert renewals == []
    assert len(asyncio.all_tasks()) == before


async def test_a_long_step_renews_every_third_until_a_renewal_fails() -> None:
    renewals: list[float] = []
    third = asyncio.Event()

    async def renew() -> bool:
        renewals.append(asyncio.get_running_loop().time())
        if len(renewals) == 3:
            third.set()
        return len(renewals) < 3

    async with heartbeat(renew, lease_seconds=0.15):
        await asyncio.wait_for(third.wait(), timeout=5)
        await asyncio.sleep(0.2)  # a failed renewal ends the heartbeat: no fourth
    assert len(renewals) == 3


async def test_leaving_the_block_waits_for_a_renewal_in_flight() -> None:
    started = asyncio.Event()
    finished: list[bool] = []

    async def renew() -> bool:
        started.set()
        await asyncio.sleep(0.1)
        finished.append(True)
        return True

    async with heartbeat(renew, lease_seconds=0.03):
        await asyncio.wait_for(started.wait(), timeout=5)
    assert finished == [True]  # the renewal finished its write before the step went on
