"""Billing of media jobs: held with the job, released in full on failure, captured once on completion
however often the completion is delivered and whatever the reconciler does meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.accounts import service as accounts
from app.billing import ledger
from app.billing import service as billing
from app.core.db import SessionMaker, unit_of_work
from app.core.queue import ActorName, Credit, transaction
from app.jobs import billing as job_billing
from app.jobs import pipeline
from app.jobs.models import Job, JobKind
from app.jobs.reconciler import reconcile_once
from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.media import FakeMediaUpstream
from tests.jobs.conftest import STEPS, create_job, reload, sender_of

pytestmark = pytest.mark.usefixtures("fake_media")
HOLD = 5 * 100_000  # five seconds at $0.10 a second


def mine(credits: list[Credit], tenant: Tenant) -> list[Credit]:
    """This tenant's credits: the reconciler sweeps the whole (shared) database, other tests' jobs too."""
    return [c for c in credits if c.account_id == tenant.account_id]


async def paid_video(
    deps: pipeline.JobDeps, sessionmaker: SessionMaker, tenant: Tenant, add_channel: AddChannel, fake: FakeMediaUpstream
) -> Job:
    model = unique_model("gen4")
    await add_channel(
        fake.base_url, [model], provider="runway", options={"min_poll_seconds": 0}, price={"per_video_second": 100_000}
    )
    async with unit_of_work(sessionmaker) as session:
        account = await accounts.get_account(session, tenant.account_id)
        await billing.topup(session, account, 10_000_000)
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5, size="1280x720")
    async with transaction(deps.sessionmaker, deps.sender) as session:
        await job_billing.hold(
            await session.connection(), account_id=tenant.account_id, job_id=job.id, amount=HOLD, model=model
        )
    return job


async def entries(sessionmaker: SessionMaker, job_id: str) -> list[tuple[str, int]]:
    async with sessionmaker() as session:
        return [(e.kind, e.amount) for e in await ledger.entries_for_job(session, job_id)]


async def balance(sessionmaker: SessionMaker, account_id: str) -> tuple[int, int]:
    async with sessionmaker() as session:
        return await ledger.balance(session, account_id), await ledger.ledger_sum(session, account_id)


async def test_a_failed_job_is_released_in_full(
    deps: Any, sessionmaker: SessionMaker, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    job = await paid_video(deps, sessionmaker, tenant, add_channel, fake_media)
    assert await balance(sessionmaker, tenant.account_id) == (10_000_000 - HOLD, 10_000_000 - HOLD)
    fake_media.fail_next = True
    sender = sender_of(deps)
    while sender.sent:
        message = sender.sent.pop(0)
        await STEPS[message.actor](deps, message.object_id)
    failed = await reload(deps, job.id)
    assert failed.status == "failed" and failed.billing_state == "released" and failed.cost == 0
    assert await entries(sessionmaker, job.id) == [("hold", -HOLD), ("release", HOLD)]
    assert await balance(sessionmaker, tenant.account_id) == (10_000_000, 10_000_000)
    assert mine(sender.credits, tenant) == [Credit(tenant.account_id, HOLD)]


async def test_completion_delivered_three_times_beside_the_reconciler_captures_once(
    deps: Any, sessionmaker: SessionMaker, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    job = await paid_video(deps, sessionmaker, tenant, add_channel, fake_media)
    sender = sender_of(deps)
    while True:
        message = sender.sent.pop(0)
        if message.actor is ActorName.JOB_STORE:
            # The completing step arrives three times at once while the reconciler sweeps.
            await asyncio.gather(*(STEPS[message.actor](deps, job.id) for _ in range(3)), reconcile_once(deps))
            break
        await STEPS[message.actor](deps, message.object_id)
    for message in list(sender.sent):  # whatever the reconciler re-sent finds the job done
        await STEPS[message.actor](deps, message.object_id)
    done = await reload(deps, job.id)
    assert done.status == "completed" and done.billing_state == "captured" and done.cost == HOLD
    assert await entries(sessionmaker, job.id) == [("hold", -HOLD), ("release", HOLD), ("capture", -HOLD)]
    assert await balance(sessionmaker, tenant.account_id) == (10_000_000 - HOLD, 10_000_000 - HOLD)
    assert mine(sender.credits, tenant) == []  # captured exactly what was held: nothing moves in the mirror
    # and a late release (a reconciler or cancel that lost the race) moves nothing
    async with transaction(deps.sessionmaker, deps.sender) as session:
        assert await job_billing.settle(await session.connection(), job.id, cost=None) == (None, 0)
    assert await balance(sessionmaker, tenant.account_id) == (10_000_000 - HOLD, 10_000_000 - HOLD)
