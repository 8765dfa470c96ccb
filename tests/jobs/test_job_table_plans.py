"""The queries that run over the jobs table again and again (GET /v1/usage, the metrics' in-flight gauge,
the reconciler's pass, the media job lists, retention) find their rows through an index: none reads the
whole table, whose job log grows by millions of rows a day (issue #23). Checked on SQLite's own plans
of the statements as the code sends them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.core.db import create_engine, create_sessionmaker
from app.core.settings import Settings
from app.jobs import service
from app.jobs.models import JobKind
from app.jobs.retention import JobLogRetention
from app.jobs.usage import usage_by_day
from app.observability.metrics import Metrics
from tests.conftest import Tenant


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "jobs" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def test_the_recurring_queries_of_the_jobs_table_use_an_index(settings: Settings, tenant: Tenant) -> None:
    if not settings.is_sqlite():
        pytest.skip("the plans checked are SQLite's (PostgreSQL's depend on its statistics)")
    engine = create_engine(settings)
    principal = Principal(tenant.key_id, tenant.account_id, "active", "default", Limits(0, 0, 0, 0))
    today = dt.datetime.now(dt.UTC).date()
    try:
        with statements(engine) as seen:
            async with engine.connect() as conn:
                await usage_by_day(conn, tenant.account_id, today - dt.timedelta(days=29), today)
            await Metrics().refresh(
                SimpleNamespace(
                    engine=engine, recorder=SimpleNamespace(pending=0, dropped=0), cache=SimpleNamespace(metrics=None)
                )
            )  # type: ignore[arg-type]
            async with create_sessionmaker(engine)() as session:
                for kind in (JobKind.IMAGE, JobKind.VIDEO):
                    await service.list_media_jobs(session, principal, kind, after=None, limit=20, descending=True)
                    await service.list_media_jobs(
                        session, principal, kind, after="video_0", limit=20, descending=False, status="completed"
                    )
            await JobLogRetention(engine, days=30, batch=10, interval=60).prune_batch()
        assert len(seen) >= 6
        async with engine.connect() as conn:
            for statement, parameters in seen:
                plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()
                steps = [row[-1] for row in plan]
                scans = [s for s in steps if s.startswith("SCAN jobs")]
                assert not scans, (statement, steps)
            # The reconciler's pass (app/jobs/reconciler.py), as it asks.
            reconcile = (
                "SELECT id FROM jobs WHERE stage IN ('queued', 'submitted', 'running', 'storing')"
                " AND (next_poll_at < :t OR deadline_at < :t) ORDER BY next_poll_at LIMIT 500"
            )
            plan = (await conn.execute(text(f"EXPLAIN QUERY PLAN {reconcile}"), {"t": "2026-01-01"})).all()
            assert not [row[-1] for row in plan if row[-1].startswith("SCAN jobs")], plan
    finally:
        await engine.dispose()


async def test_the_media_indexes_leave_the_job_log_out_on_both_databases(settings: Settings) -> None:
    """The partial indexes come from the migrations (the models name no dialect's WHERE, so neither
    dialect's package is loaded by the other database's processes): a job-log row is in the retention
    index only, a media row in the three media indexes only."""
    where = {
        "ix_jobs_log_created": "stage IS NULL",
        "ix_jobs_media_account_created": "stage IS NOT NULL",
        "ix_jobs_media_kind_account_id": "stage IS NOT NULL",
        "ix_jobs_media_stage_poll": "stage IS NOT NULL",
    }
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            if settings.is_sqlite():
                sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'"
            else:
                sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs'"
            found = {name: definition for name, definition in (await conn.execute(text(sql))).all()}
    finally:
        await engine.dispose()
    for name, condition in where.items():
        # PostgreSQL prints its own form of the WHERE: "WHERE (stage IS NULL)"
        assert condition in found[name].replace("(", "").replace(")", "").split("WHERE")[-1], found[name]
