"""What a media job costs the database (issue #23), counted on the statements the steps send.

A job whose upstream answers at once (the local provider with no pretend waiting, OpenAI images,
Stability) is drawn and stored in its submit step: one message, two transactions (the claim, the
outcome), three statements. Before, the local provider went submit → poll → store: three messages, six
transactions, twelve statements. A poll that learns nothing new writes nothing beyond its claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.queue import ActorName
from app.jobs.models import JobKind
from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.media import FakeMediaUpstream
from tests.jobs.conftest import STEPS, create_job, deliver, reload, sender_of


@dataclass
class Counts:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[Counts]:
    counts = Counts()

    def statement(_conn: Any, _cursor: Any, sql: str, _params: Any, _context: Any, _many: bool) -> None:
        counts.statements.append(sql)

    def commit(_conn: Any) -> None:
        counts.transactions += 1

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(sync, "before_cursor_execute", statement)
        event.remove(sync, "commit", commit)


def engine_of(deps: Any) -> AsyncEngine:
    engine = deps.sessionmaker.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return engine


async def test_a_local_job_is_one_step_of_two_transactions_and_three_statements(deps, tenant: Tenant) -> None:
    # Given a queued local image job (the local provider answers at once: no pretend waiting)
    job = await create_job(deps, tenant, JobKind.IMAGE, "local-image", size="64x64", n=1, output_format="png")
    # When the worker runs every step it is sent, counting what reaches the database
    with counted(engine_of(deps)) as counts:
        delivered = await deliver(deps)
    # Then the job completed in its submit step alone: a claim and an outcome
    done = await reload(deps, job.id)
    assert done.status == "completed" and len(done.assets or []) == 1
    assert done.started_at is not None and done.upstream_id is None
    assert [m.actor for m in delivered] == [ActorName.JOB_SUBMIT]
    assert counts.transactions == 2, counts.statements
    # claim (UPDATE … RETURNING), completion (UPDATE), the account's webhook endpoints (one SELECT
    # for both events: in_progress and completed)
    assert len(counts.statements) == 3, counts.statements
    assert len(counts.writes) == 2, counts.statements


async def test_a_poll_that_learns_nothing_writes_nothing_beyond_its_claim(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    # Given a Runway task, submitted, whose first poll will say PENDING (nothing new)
    model = unique_model("gen4")
    await add_channel(fake_media.base_url, [model], provider="runway", options={"min_poll_seconds": 0})
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5, size="1280x720")
    sent = sender_of(deps).sent
    submit = sent.pop(0)
    await STEPS[submit.actor](deps, submit.object_id)
    (first_poll,) = sent
    sent.clear()
    before = await reload(deps, job.id)
    # When that poll runs
    with counted(engine_of(deps)) as counts:
        await STEPS[first_poll.actor](deps, first_poll.object_id)
    # Then its only write is the claim, whose lease is when the next poll is due; the next poll is sent
    assert len(counts.writes) == 1 and counts.transactions == 1, counts.statements
    after = await reload(deps, job.id)
    assert (after.stage, after.progress, after.attempts) == (before.stage, before.progress, before.attempts)
    assert after.next_poll_at is not None and after.next_poll_at > before.next_poll_at  # type: ignore[operator]
    assert [m.actor for m in sent] == [ActorName.JOB_POLL]
    # And the job still runs to the end
    await deliver(deps)
    assert (await reload(deps, job.id)).status == "completed"


@pytest.mark.parametrize("duplicate", [True])
async def test_duplicate_one_step_jobs_complete_once(deps, tenant: Tenant, duplicate: bool) -> None:
    # Every message delivered twice, concurrently: one claim wins, the job completes once
    job = await create_job(deps, tenant, JobKind.VIDEO, "local-video", seconds=1, size="64x64")
    await deliver(deps, duplicate=duplicate)
    done = await reload(deps, job.id)
    assert done.status == "completed" and done.progress == 100
    assert {a["variant"] for a in done.assets or []} == {"video", "thumbnail"}
