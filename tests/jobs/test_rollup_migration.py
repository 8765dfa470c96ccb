"""Migration 0016 rolls up the job rows already written, so GET /v1/usage answers the same across the
upgrade (issue #23). Run on a scratch SQLite file taken to 0010 first (the suite's database is at head)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlalchemy import text

from alembic import command
from app.cli.runner import alembic_config
from app.core.db import create_engine
from app.core.settings import Settings
from app.jobs.usage import usage_by_day
from tests.jobs.raw_usage import raw_usage


async def test_the_migration_rolls_up_the_rows_already_written(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path, database_url="")  # type: ignore[call-arg]
    config = alembic_config(settings)
    await asyncio.to_thread(command.upgrade, config, "0010")
    engine = create_engine(settings)
    rows = [
        ("chatcmpl-1", "chat", None, "m-a", "2026-11-30 23:59:59.999999", 10, 5, 100),
        ("chatcmpl-2", "chat", None, "m-a", "2026-12-01 00:00:00.000000", 7, None, None),
        ("emb_3", "embedding", None, "m-b", "2026-12-01 12:00:00.000000", 3, None, 9),
        ("video_4", "video", "completed", "m-v", "2026-12-01 13:00:00.000000", None, None, 500),
    ]
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO accounts (id, name, status, tier, created_at, balance)"
                    " VALUES ('acct_m', 'm', 'active', 'default', '2026-01-01 00:00:00.000000', 0)"
                )
            )
            for job_id, kind, stage, model, at, prompt, completion, cost in rows:
                await conn.execute(
                    text(
                        "INSERT INTO jobs (id, kind, status, account_id, model, stream, created_at, stage,"
                        " prompt_tokens, completion_tokens, cost, progress, attempts, version)"
                        " VALUES (:id, :kind, 'completed', 'acct_m', :model, 0, :at, :stage, :p, :c, :cost, 0, 0, 0)"
                    ),
                    {
                        "id": job_id,
                        "kind": kind,
                        "model": model,
                        "at": at,
                        "stage": stage,
                        "p": prompt,
                        "c": completion,
                        "cost": cost,
                    },
                )
        start, end = dt.date(2026, 11, 1), dt.date(2026, 12, 31)
        async with engine.connect() as conn:
            before = await raw_usage(conn, "acct_m", start, end)
        await engine.dispose()
        await asyncio.to_thread(command.upgrade, config, "head")
        engine = create_engine(settings)
        async with engine.connect() as conn:
            assert await usage_by_day(conn, "acct_m", start, end) == before
            rolled = (await conn.execute(text("SELECT count(*), sum(requests) FROM usage_rollups"))).one()
        assert tuple(rolled) == (3, 3)  # the job log's three rows in three (day, model) groups; the video stays a row
        assert [r["requests"] for r in before] == [1, 1, 1, 1]
    finally:
        await engine.dispose()
