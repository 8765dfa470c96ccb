"""The job log's retention and the usage rollups (issue #23): rows past the window go, the ledger, the
rollups and the media jobs stay, GET /v1/usage answers what the rows said before and after pruning,
and pruning while the job log is being written loses no row that is still inside the window."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.accounts.models import Account
from app.billing import service as billing
from app.billing.ledger import LEDGER
from app.core.db import SessionMaker, create_engine, unit_of_work, utcnow
from app.core.ids import new_id
from app.core.settings import Settings
from app.jobs.capture import capture_records
from app.jobs.models import JOBS, Job, JobKind, JobStatus, Stage
from app.jobs.recorder import JobRecorder
from app.jobs.records import JobRecord
from app.jobs.retention import JobLogRetention
from app.jobs.usage import latency_percentiles
from tests.conftest import Tenant
from tests.jobs.raw_usage import raw_usage

DAY = dt.timedelta(days=1)


def _record(tenant: Tenant, at: dt.datetime, n: int, **fields: Any) -> JobRecord:
    kind = JobKind.EMBEDDING if n % 3 == 0 else JobKind.CHAT
    values: dict[str, Any] = {
        "status": JobStatus.COMPLETED,
        "model": f"m-{n % 2}",
        "prompt_tokens": 10 + n,
        "completion_tokens": None if kind is JobKind.EMBEDDING else n,
        "hold_amount": 1_000,
        "cost": n % 5 * 7,
        "latency_ms": 20 + n,
        "created_at": at,
        "completed_at": at,
    }
    values.update(fields)
    return JobRecord(
        id=new_id("emb_" if kind is JobKind.EMBEDDING else "chatcmpl-"),
        kind=kind,
        account_id=tenant.account_id,
        api_key_id=tenant.key_id,
        **values,
    )


async def _write(settings: Settings, records: list[JobRecord], batch_size: int = 50) -> None:
    engine = create_engine(settings)
    recorder = JobRecorder(
        engine, flush_ms=60_000, batch_size=batch_size, max_pending=len(records) + 1, on_write=capture_records
    )
    try:
        for rec in records:
            recorder.record(rec)
        await recorder.flush()
        assert recorder.pending == 0 and recorder.dropped == 0
    finally:
        await engine.dispose()


async def _topup(sessionmaker: SessionMaker, tenant: Tenant, amount: int) -> None:
    async with unit_of_work(sessionmaker) as session:
        account = await session.get(Account, tenant.account_id)
        assert account is not None
        await billing.topup(session, account, amount)


async def _raw_usage(sessionmaker: SessionMaker, account_id: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    async with sessionmaker() as session:
        return await raw_usage(await session.connection(), account_id, start, end)


async def _ids(sessionmaker: SessionMaker, account_id: str) -> set[str]:
    async with sessionmaker() as session:
        conn = await session.connection()
        return set((await conn.execute(select(JOBS.c.id).where(JOBS.c.account_id == account_id))).scalars())


async def _ledger(sessionmaker: SessionMaker, account_id: str) -> list[tuple[Any, ...]]:
    async with sessionmaker() as session:
        conn = await session.connection()
        stmt = select(LEDGER.c.id, LEDGER.c.kind, LEDGER.c.amount).where(LEDGER.c.account_id == account_id)
        return [tuple(r) for r in (await conn.execute(stmt.order_by(LEDGER.c.id))).all()]


async def test_rows_past_the_window_go_and_usage_answers_the_same(
    client: AsyncTestClient[Any], settings: Settings, sessionmaker: SessionMaker, tenant: Tenant
) -> None:
    await _topup(sessionmaker, tenant, 1_000_000)
    now = utcnow()
    ages = [dt.timedelta(days=45), dt.timedelta(days=31), dt.timedelta(days=29, hours=23), dt.timedelta(hours=1)]
    records = [_record(tenant, now - age, n) for n, age in enumerate(ages * 10)]
    await _write(settings, records)
    # A media job as old as the oldest rows: it stays (its files decide), and /v1/usage counts it.
    async with unit_of_work(sessionmaker) as session:
        media = Job(
            id=new_id("video_"),
            kind=JobKind.VIDEO,
            status=JobStatus.COMPLETED,
            stage=Stage.COMPLETED,
            account_id=tenant.account_id,
            model="video-m",
            created_at=now - dt.timedelta(days=45),
            hold_amount=500,
            cost=500,
        )
        session.add(media)

    start, end = (now - dt.timedelta(days=60)).date(), now.date()
    query = f"/v1/usage?start={start}&end={end}"
    before = (await client.get(query, headers=tenant.headers)).json()
    raw = await _raw_usage(sessionmaker, tenant.account_id, start, end)
    assert before["data"] == raw
    assert sum(d["requests"] for d in before["data"]) == len(records) + 1
    ledger_before = await _ledger(sessionmaker, tenant.account_id)
    assert len(ledger_before) > 1  # the top-up and the captures

    retention = JobLogRetention(create_engine(settings), days=30, batch=3, interval=60)
    try:
        removed = await retention.prune()
    finally:
        await retention._engine.dispose()
    expired = {r.id for r in records if now - r.created_at > dt.timedelta(days=30)}
    assert removed >= len(expired) == 20
    left = await _ids(sessionmaker, tenant.account_id)
    assert left == {r.id for r in records} - expired | {media.id}

    after = (await client.get(query, headers=tenant.headers)).json()
    assert after == before
    assert await _ledger(sessionmaker, tenant.account_id) == ledger_before
    # The rows themselves no longer add up to the report: the rollups answered it.
    assert await _raw_usage(sessionmaker, tenant.account_id, start, end) != raw


async def test_pruning_while_rows_are_written_loses_no_row_inside_the_window(
    settings: Settings, sessionmaker: SessionMaker, tenant: Tenant
) -> None:
    now = utcnow()
    old = [_record(tenant, now - dt.timedelta(days=31, minutes=n), n, cost=0) for n in range(300)]
    await _write(settings, old)
    # New rows keep coming while the pruner works through the old ones, some just inside the window.
    fresh = [
        _record(tenant, now - (dt.timedelta(days=30) - dt.timedelta(minutes=5) if n % 2 else dt.timedelta()), n, cost=0)
        for n in range(600)
    ]
    engine = create_engine(settings)
    retention = JobLogRetention(engine, days=30, batch=7, interval=60)
    recorder = JobRecorder(engine, flush_ms=1, batch_size=20, max_pending=1_000)
    writing = True

    async def write() -> None:
        nonlocal writing
        try:
            for start in range(0, len(fresh), 20):
                for rec in fresh[start : start + 20]:
                    recorder.record(rec)
                await recorder.flush()
                await asyncio.sleep(0)
        finally:
            writing = False

    async def prune() -> int:
        removed = 0
        while True:
            batch = await retention.prune_batch()
            removed += batch
            await asyncio.sleep(0)
            if not batch and not writing:
                return removed

    try:
        _, removed = await asyncio.gather(write(), prune())
    finally:
        await engine.dispose()
    assert recorder.dropped == 0 and recorder.pending == 0
    assert removed >= len(old)
    assert await _ids(sessionmaker, tenant.account_id) == {r.id for r in fresh}


async def test_the_rollups_keep_a_latency_sketch(
    settings: Settings, sessionmaker: SessionMaker, tenant: Tenant
) -> None:
    now = utcnow()
    records = [_record(tenant, now, 0, latency_ms=ms, cost=0, model="sketch") for ms in range(1, 1001)]
    await _write(settings, records, batch_size=500)
    async with sessionmaker() as session:
        p = await latency_percentiles(await session.connection(), tenant.account_id, now.date(), now.date(), "sketch")
    assert p[50] is not None and abs(p[50] - 500) <= 0.08 * 500, p
    assert p[95] is not None and abs(p[95] - 950) <= 0.08 * 950, p
