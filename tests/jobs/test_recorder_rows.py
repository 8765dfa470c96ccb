"""The job log writes through the driver (plain tuples, `exec_driver_sql`): what it stores must be
exactly what the SQLAlchemy Core path it replaced stored, byte for byte in the database, through the
ORM and through the API, on whichever database the run uses.

The oracle is the Core path itself, kept here verbatim: the same records go once through the
recorder (one tenant) and once through `insert(JOBS)` with the old `as_row` dicts and the old
`post_entries` (another tenant); every column must then read back the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import Text, cast, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from app.accounts.models import Account
from app.billing.models import LedgerEntry
from app.core.db import DriverSQL, UTCDateTime, create_engine, create_sessionmaker, utcnow
from app.core.ids import new_id
from app.core.settings import Settings
from app.jobs.capture import capture_records, captures
from app.jobs.models import JOBS, Job, JobKind, JobStatus
from app.jobs.recorder import JobRecorder
from app.jobs.records import JobRecord
from tests.conftest import Tenant
from tests.jobs.raw_usage import raw_usage

LEDGER = SQLModel.metadata.tables[LedgerEntry.__tablename__]
ACCOUNTS = SQLModel.metadata.tables[Account.__tablename__]
T0 = dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC)


def records(tenant: Tenant) -> list[JobRecord]:
    """Every shape the gateway records: billed and free, failed, streamed, embeddings, odd values."""

    def rec(**fields: Any) -> JobRecord:
        base: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "kind": JobKind.CHAT,
            "status": JobStatus.COMPLETED,
            "account_id": tenant.account_id,
            "api_key_id": tenant.key_id,
            "model": "gpt-4o-mini",
        }
        return JobRecord(**{**base, **fields})

    return [
        rec(
            channel_id="ch_1",
            usage={"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42, "cost": 1250},
            latency_ms=35,
            http_status=200,
            attempts_log=[{"channel": "ch_1", "outcome": "ok", "status": 200, "ms": 31}],
            created_at=T0,
            completed_at=T0 + dt.timedelta(milliseconds=35),
            prompt_tokens=12,
            completion_tokens=30,
            hold_amount=2_000,
            cost=1_250,
        ),
        rec(  # a stream; times on a whole second and in another zone (stored as UTC)
            stream=True,
            usage={"prompt_tokens": 1, "completion_tokens": 2, "details": {"cached": 0, "ratio": 0.5, "ok": True}},
            ttft_ms=7,
            latency_ms=90,
            http_status=200,
            created_at=dt.datetime(2026, 3, 1, 18, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
            completed_at=dt.datetime(2026, 3, 1, 12, 30, 46, tzinfo=dt.UTC),
            hold_amount=5_000,
            cost=7_000,  # over the hold: the capture says why
        ),
        rec(  # failed upstream; Gemini's numeric error code; non-ASCII everywhere text goes
            status=JobStatus.FAILED,
            model="gemini-2.0-flash",
            channel_id="ch_ü",
            http_status=502,
            error_code=400,
            error_message="Upstream answered 400: «невалидный запрос» — 请求无效 ✗ 🙃",
            attempts_log=[
                {"channel": "ch_ü", "outcome": "error", "status": 400, "message": "ungültig ✗"},
                {"channel": "ch_2", "outcome": "timeout", "status": None},
            ],
            created_at=T0,
            hold_amount=3_000,  # held, nothing captured: released
        ),
        rec(  # nothing optional set: None everywhere, completed_at stamped at write time
            status=JobStatus.FAILED,
            api_key_id=None,
            error_code="rate_limited",
            error_message="",
        ),
        rec(  # embeddings; empty JSON containers; large amounts (BIGINT)
            id=new_id("emb_"),
            kind=JobKind.EMBEDDING,
            model="text-embedding-3-small",
            usage={},
            attempts_log=[],
            http_status=200,
            prompt_tokens=2**31 - 1,
            completion_tokens=0,
            hold_amount=2**40,
            cost=2**40 - 1,
            created_at=dt.datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),  # SQLite keeps 4-digit years
        ),
        rec(cost=0, hold_amount=0, usage=None, attempts_log=None, latency_ms=0),
    ]


def old_as_row(rec: JobRecord) -> dict[str, Any]:
    """The Core path's row, as JobRecord.as_row built it before the driver path."""
    return {
        "id": rec.id,
        "kind": rec.kind,
        "status": rec.status,
        "account_id": rec.account_id,
        "api_key_id": rec.api_key_id,
        "model": rec.model,
        "channel_id": rec.channel_id,
        "stream": rec.stream,
        "usage": rec.usage,
        "latency_ms": rec.latency_ms,
        "ttft_ms": rec.ttft_ms,
        "http_status": rec.http_status,
        "error_code": None if rec.error_code is None else str(rec.error_code),
        "error_message": rec.error_message,
        "attempts_log": rec.attempts_log,
        "created_at": rec.created_at,
        "completed_at": rec.completed_at or utcnow(),
        "prompt_tokens": rec.prompt_tokens,
        "completion_tokens": rec.completion_tokens,
        "hold_amount": rec.hold_amount,
        "cost": rec.cost,
        "billing_state": rec.billing_state,
    }


async def old_post_entries(conn: AsyncConnection, entries: list[dict[str, Any]]) -> None:
    """ledger.post_entries before the driver path (without the guard, which the job log never sets)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(LEDGER)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(LEDGER.c.idempotency_key)
    )
    inserted = set((await conn.execute(stmt, entries)).scalars().all())
    deltas: dict[str, int] = defaultdict(int)
    for e in entries:
        if e["idempotency_key"] in inserted:
            deltas[e["account_id"]] += e["amount"]
    for account_id in sorted(deltas):
        balance = ACCOUNTS.c.balance + deltas[account_id]
        await conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(balance=balance))


async def write_the_old_way(engine: AsyncEngine, batch: list[JobRecord]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(JOBS), [old_as_row(rec) for rec in batch])
        await old_post_entries(conn, captures(batch))


def twin(rec: JobRecord, tenant: Tenant) -> JobRecord:
    """The same record for another tenant, under its own id (same kind of id)."""
    prefix = rec.id[: rec.id.index("-") + 1] if "-" in rec.id else rec.id[: rec.id.index("_") + 1]
    return dataclasses.replace(
        rec,
        id=new_id(prefix),
        account_id=tenant.account_id,
        api_key_id=None if rec.api_key_id is None else tenant.key_id,
    )


async def stored(engine: AsyncEngine, table: Any, where: Any) -> list[dict[str, Any]]:
    """Each column as the database holds it: its text (and, on SQLite, its storage class)."""
    columns = [cast(c, Text).label(c.name) for c in table.c]
    if engine.dialect.name == "sqlite":
        columns += [func.typeof(c).label(f"typeof({c.name})") for c in table.c]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*columns).where(where))).mappings().all()
    return [dict(row) for row in rows]


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def test_rows_match_the_core_path_in_the_database_the_orm_and_the_api(
    engine: AsyncEngine,
    make_tenant: Callable[..., Awaitable[Tenant]],
    client: AsyncTestClient[Any],
) -> None:
    new_tenant, old_tenant = await make_tenant(), await make_tenant()
    new = records(new_tenant)
    old = [twin(rec, old_tenant) for rec in new]
    before = utcnow()
    recorder = JobRecorder(engine, flush_ms=60_000, batch_size=100, max_pending=100, on_write=capture_records)
    for rec in new:
        recorder.record(rec)
    await recorder.flush()
    assert recorder.pending == 0
    await write_the_old_way(engine, old)
    after = utcnow()
    old_of = {n.id: o.id for n, o in zip(new, old, strict=True)}
    renamed = {o: n for n, o in old_of.items()}
    renamed |= {old_tenant.account_id: new_tenant.account_id, old_tenant.key_id: new_tenant.key_id}
    stamped = {rec.id for rec in new if rec.completed_at is None}

    def as_new(value: Any) -> Any:
        """The old tenant's value, its ids (also inside idempotency keys) swapped for the new's."""
        if isinstance(value, str):
            for old_text, new_text in renamed.items():
                value = value.replace(old_text, new_text)
        return value

    # 1. In the database, column by column; completed_at stamped at write time differs by design.
    new_rows = await stored(engine, JOBS, JOBS.c.id.in_(old_of))
    old_rows = {row["id"]: row for row in await stored(engine, JOBS, JOBS.c.id.in_(renamed))}
    assert len(new_rows) == len(old_rows) == len(new)
    for row in new_rows:
        want = {k: as_new(v) for k, v in old_rows[old_of[row["id"]]].items()}
        if row["id"] in stamped:
            assert row.pop("completed_at") and want.pop("completed_at")
        assert row == want

    # The captures (their ids aside) and the balances they moved.
    def entries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({k: as_new(v) for k, v in r.items() if k != "id"} for r in rows), key=lambda r: r["job_id"])

    new_entries = await stored(engine, LEDGER, LEDGER.c.account_id == new_tenant.account_id)
    old_entries = await stored(engine, LEDGER, LEDGER.c.account_id == old_tenant.account_id)
    assert len(new_entries) == 3  # the three records that cost something
    assert entries(new_entries) == entries(old_entries)
    async with engine.connect() as conn:
        where = ACCOUNTS.c.id.in_([new_tenant.account_id, old_tenant.account_id])
        balances = set((await conn.execute(select(ACCOUNTS.c.balance).where(where))).scalars())
    assert balances == {-(1_250 + 7_000 + 2**40 - 1)}

    # 2. Through the ORM, every attribute.
    async with create_sessionmaker(engine)() as session:
        for rec in new:
            got, twin_job = await session.get(Job, rec.id), await session.get(Job, old_of[rec.id])
            assert got is not None and twin_job is not None
            got_fields = got.model_dump()
            want_fields = {k: as_new(v) for k, v in twin_job.model_dump().items()}
            if rec.id in stamped:
                assert before <= got_fields.pop("completed_at") <= after
                want_fields.pop("completed_at")
            assert got_fields == want_fields
            assert got.usage == rec.usage and got.attempts_log == rec.attempts_log
            assert got.created_at == rec.created_at and got.created_at.tzinfo == dt.UTC

    # 3. Through the API: each job with its ledger, and the usage reports.
    for rec in new:
        got_job = (await client.get(f"/v1/jobs/{rec.id}", headers=new_tenant.headers)).json()
        want_job = (await client.get(f"/v1/jobs/{old_of[rec.id]}", headers=old_tenant.headers)).json()
        for job in (got_job, want_job):
            job.pop("id")
            for entry in job["billing"]["ledger"]:
                entry.pop("id")
                entry.pop("job_id")
            if rec.id in stamped:
                job.pop("completed_at")
        assert got_job == want_job
    # The usage reports (from the rollups the recorder keeps) say what the old way's rows add up to.
    for window in ("", "?start=2026-02-20&end=2026-03-10", "?start=0999-01-01&end=0999-01-10"):
        got_usage = (await client.get(f"/v1/usage{window}", headers=new_tenant.headers)).json()
        start, end = dt.date.fromisoformat(got_usage["start"]), dt.date.fromisoformat(got_usage["end"])
        async with engine.connect() as conn:
            want = await raw_usage(conn, old_tenant.account_id, start, end)
        assert got_usage["data"] and got_usage["data"] == want
        assert got_usage["total_cost"] == sum(row["cost"] for row in want)


@pytest.mark.parametrize(
    "value",
    [
        T0,
        dt.datetime(2026, 3, 1, 0, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 0, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
        dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 2, 30, 0, 500, tzinfo=ZoneInfo("Europe/Paris")),
        None,
    ],
)
def test_timestamps_bind_as_sqlalchemy_binds_them(value: dt.datetime | None) -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg
    from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite

    for dialect in (aiosqlite(), asyncpg()):
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        core = processor(value) if processor else UTCDateTime().process_bind_param(value, dialect)
        assert DriverSQL(dialect).timestamp(value) == core


def test_a_naive_timestamp_is_refused_as_before() -> None:
    from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite

    with pytest.raises(ValueError, match="naive"):
        DriverSQL(aiosqlite()).timestamp(dt.datetime(2026, 1, 1))


def test_other_drivers_are_refused_at_start_up() -> None:
    """Values are prepared for aiosqlite and asyncpg only; another driver would store other forms."""
    from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg

    with pytest.raises(ValueError, match="postgresql\\+asyncpg"):
        DriverSQL(psycopg())
