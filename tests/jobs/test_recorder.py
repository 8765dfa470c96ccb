"""The job log's batched writer: a row the database refuses never holds up the rows around it."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.billing.ledger import ACCOUNTS, LEDGER
from app.core.db import DriverSQL, create_engine
from app.core.ids import new_id
from app.core.settings import Settings
from app.jobs.capture import capture_records
from app.jobs.models import JOBS, Job, JobKind, JobStatus
from app.jobs.recorder import JobRecorder
from app.jobs.records import JobRecord
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


async def test_a_row_refused_mid_batch_leaves_no_half_written_batch(settings: Settings, tenant: Tenant) -> None:
    """The database refuses the middle row (no such account) after taking the first: the batch's
    transaction, captures included, is undone and the rows go again one by one, so each good row and
    its capture land exactly once and the balance moves by exactly their cost."""
    engine = create_engine(settings)
    settled: list[str] = []

    async def after_write(batch: list[JobRecord]) -> None:
        settled.extend(rec.id for rec in batch)

    recorder = JobRecorder(
        engine, flush_ms=60_000, batch_size=100, max_pending=100, on_write=capture_records, after_write=after_write
    )
    first, last = _record(tenant, cost=300, hold_amount=500), _record(tenant, cost=40, hold_amount=500)
    orphan = dataclasses.replace(_record(tenant, cost=7), account_id="acct_gone")
    try:
        before = await _balance(engine, tenant.account_id)
        for rec in (first, orphan, last):
            recorder.record(rec)
        await recorder.flush()
        assert recorder.pending == 0
        async with engine.connect() as conn:
            jobs = await conn.execute(select(JOBS.c.id).where(JOBS.c.id.in_([first.id, orphan.id, last.id])))
            keys = await conn.execute(select(LEDGER.c.idempotency_key).where(LEDGER.c.account_id == tenant.account_id))
            assert sorted(jobs.scalars()) == sorted([first.id, last.id])
            assert sorted(keys.scalars()) == sorted([f"{first.id}:capture", f"{last.id}:capture"])
        assert await _balance(engine, tenant.account_id) == before - 340
    finally:
        await engine.dispose()
    assert settled == [first.id, last.id]


async def _balance(engine: AsyncEngine, account_id: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == account_id))).scalar_one())


async def test_a_large_batch_lets_the_event_loop_serve_others_while_it_is_written(
    settings: Settings, tenant: Tenant
) -> None:
    """SQLite statements run on the event loop: a batch goes in slices, so a request that arrives
    during a flush waits for a slice, not for the whole batch. Counted in turns of the loop taken by
    another task while the batch's rows and captures were inserted (before the commit, which waits
    for aiosqlite's thread anyway); on PostgreSQL every statement's round trip gives such turns."""
    engine = create_engine(settings)
    turns = 0
    turns_before_commit: list[int] = []
    stop = False

    async def other_task() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    async def on_write(conn: Any, batch: list[JobRecord]) -> None:
        await capture_records(conn, batch)
        turns_before_commit.append(turns)

    recorder = JobRecorder(engine, flush_ms=60_000, batch_size=500, max_pending=500, on_write=on_write)
    records = [_record(tenant, cost=1, hold_amount=5) for _ in range(200)]
    ticker = asyncio.ensure_future(other_task())
    try:
        recorder.record(_record(tenant))
        await recorder.flush()  # the pool's connection opened (its opening waits for a thread)
        turns_before_commit.clear()
        for rec in records:
            recorder.record(rec)
        started = turns
        await recorder.flush()
        assert recorder.pending == 0
        async with engine.connect() as conn:
            written = (await conn.execute(select(Job.id).where(Job.id.in_([r.id for r in records])))).all()  # type: ignore[attr-defined]
    finally:
        stop = True
        await ticker
        await engine.dispose()
    assert len(written) == 200
    # 200 job rows and 200 captures in slices: the other task ran between the slices.
    assert turns_before_commit[0] - started >= 2 * (200 // DriverSQL.INLINE_ROWS) - 2
