"""What GET /v1/usage computed before the usage rollups (issue #23): the job rows themselves, grouped by
UTC day and model. The tests hold the rollups' answer to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.jobs.models import JOBS


async def raw_usage(conn: AsyncConnection, account_id: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    c = JOBS.c
    if conn.dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", c.created_at), "YYYY-MM-DD")
    else:
        day = func.substr(c.created_at, 1, 10)
    stmt = (
        select(
            day.label("day"),
            c.model,
            func.count(),
            func.coalesce(func.sum(c.prompt_tokens), 0),
            func.coalesce(func.sum(c.completion_tokens), 0),
            func.coalesce(func.sum(c.cost), 0),
        )
        .where(
            c.account_id == account_id,
            c.created_at >= dt.datetime.combine(start, dt.time(), dt.UTC),
            c.created_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
        )
        .group_by("day", c.model)
        .order_by("day", c.model)
    )
    keys = ("date", "model", "requests", "prompt_tokens", "completion_tokens", "cost")
    return [dict(zip(keys, (r[0], r[1], *map(int, r[2:])), strict=True)) for r in (await conn.execute(stmt)).all()]
