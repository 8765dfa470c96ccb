"""An account's usage from the job table: requests, tokens and cost by UTC day and model (GET
/v1/usage and the console's usage page), and latency percentiles by model."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from app.core.db import SessionMaker
from app.core.errors import InvalidRequest
from app.jobs.models import JOBS

MAX_USAGE_DAYS = 366
FIRST_DAY, LAST_DAY = dt.date(1, 2, 1), dt.date(9999, 12, 30)
LATENCY_SAMPLE = 50_000
"""Most rows read for the percentiles (the newest), so a busy account's page stays quick."""


def date_range(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """`start` to `end` inclusive; default: the 30 days to today (UTC)."""
    for name, given in (("start", start), ("end", end)):
        # Past these, the day arithmetic below overflows a datetime.
        if given is not None and not FIRST_DAY <= given <= LAST_DAY:
            raise InvalidRequest(
                f"'{name}' must be between {FIRST_DAY} and {LAST_DAY}.", param=name, code="invalid_value"
            )
    end_date = end or dt.datetime.now(dt.UTC).date()
    start_date = start or end_date - dt.timedelta(days=29)
    if start_date > end_date:
        raise InvalidRequest("'start' must not be after 'end'.", param="start", code="invalid_value")
    if (end_date - start_date).days >= MAX_USAGE_DAYS:
        raise InvalidRequest(
            f"A usage report spans at most {MAX_USAGE_DAYS} days.", param="start", code="invalid_value"
        )
    return start_date, end_date


def bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime.combine(start, dt.time(), dt.UTC), dt.datetime.combine(
        end + dt.timedelta(days=1), dt.time(), dt.UTC
    )


async def by_day_and_model(
    sessionmaker: SessionMaker, account_id: str, lower: dt.datetime, upper: dt.datetime
) -> list[dict[str, Any]]:
    c = JOBS.c
    async with sessionmaker() as session:
        conn = await session.connection()
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
            .where(c.account_id == account_id, c.created_at >= lower, c.created_at < upper)
            .group_by("day", c.model)
            .order_by("day", c.model)
        )
        rows = (await conn.execute(stmt)).all()
    return [
        {
            "date": r[0],
            "model": r[1],
            "requests": int(r[2]),
            "prompt_tokens": int(r[3]),
            "completion_tokens": int(r[4]),
            "cost": int(r[5]),
        }
        for r in rows
    ]


def percentile(values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of sorted `values`."""
    rank = max(1, -(-int(fraction * 1000) * len(values) // 1000))
    return values[min(rank, len(values)) - 1]


async def latency_by_model(
    sessionmaker: SessionMaker, account_id: str, lower: dt.datetime, upper: dt.datetime
) -> list[dict[str, Any]]:
    c = JOBS.c
    stmt = (
        select(c.model, c.latency_ms)
        .where(c.account_id == account_id, c.created_at >= lower, c.created_at < upper, c.latency_ms.is_not(None))
        .order_by(c.created_at.desc())
        .limit(LATENCY_SAMPLE)
    )
    async with sessionmaker() as session:
        rows = (await (await session.connection()).execute(stmt)).all()
    by_model: dict[str, list[int]] = defaultdict(list)
    for model, latency in rows:
        by_model[model].append(int(latency))
    out = []
    for model, values in sorted(by_model.items()):
        values.sort()
        out.append(
            {"model": model, "count": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
        )
    return out
