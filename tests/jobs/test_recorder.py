"""The job log's batched writer: a row the database refuses never holds up the rows around it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import create_engine
from app.ids import new_id
from app.jobs.models import Job, JobKind, JobStatus
from app.jobs.recorder import JobRecord, JobRecorder
from app.settings import Settings
from tests.conftest import Tenant


def _record(tenant: Tenant, **fields: Any) -> JobRecord:
    return JobRecord(
        id=new_id("chatcmpl-"),
        kind=JobKind.CHAT,
        status=JobStatus.FAILED,
        account_id=tenant.account_id,
        api_key_id=tenant.key_id,
        model="gemini-x",
        **fields,
    )


async def test_a_refused_row_is_dropped_alone_and_the_others_are_written(settings: Settings, tenant: Tenant) -> None:
    engine = create_engine(settings)
    settled: list[str] = []

    async def after_write(batch: list[JobRecord]) -> None:
        settled.extend(rec.id for rec in batch)

    recorder = JobRecorder(engine, flush_ms=60_000, batch_size=100, max_pending=100, after_write=after_write)
    # Gemini sends its error code as a number: stored as text, on PostgreSQL too.
    first = _record(tenant, error_code=400, error_message="Upstream answered 400", http_status=400)  # type: ignore[arg-type]
    poison = _record(tenant, usage={"not json": object()})  # no JSON encoder takes it
    last = _record(tenant, error_code="upstream_error")
    try:
        for rec in (first, poison, last):
            recorder.record(rec)
        await recorder.flush()
        assert recorder.pending == 0
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(Job.id, Job.error_code).where(Job.id.in_([first.id, poison.id, last.id]))  # type: ignore[attr-defined]
                )
            ).all()
    finally:
        await engine.dispose()
    assert dict(rows) == {first.id: "400", last.id: "upstream_error"}
    assert settled == [first.id, last.id]
