"""An account's usage by UTC day and model (GET /v1/usage and the console's usage page), and latency
percentiles per model: the job log from its rollups, media jobs
(few, kept as long as their files, and billed when they finish) from their rows through a partial
index. Neither part reads a job-log row, so the answer costs the same at any history and stays the
same after retention removes old rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import InvalidRequest
from app.jobs import rollups
from app.jobs.models import JOBS, MEDIA_ROW, USAGE_ROLLUPS

MAX_USAGE_DAYS = 366
FIRST_DAY, LAST_DAY = dt.date(1, 2, 1), dt.date(9999, 12, 30)


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


async def usage_by_day(conn: AsyncConnection, account_id: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Requests, tokens and cost per (day, model), `start` to `end` inclusive, ordered by day then model."""
    r, j = USAGE_ROLLUPS.c, JOBS.c
    logged = select(
        r.day.label("day"),
        r.model.label("model"),
        r.requests.label("requests"),
        r.prompt_tokens.label("prompt_tokens"),
        r.completion_tokens.label("completion_tokens"),
        r.cost.label("cost"),
    ).where(r.account_id == account_id, r.day >= start.isoformat(), r.day <= end.isoformat())
    if conn.dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", j.created_at), "YYYY-MM-DD")
    else:
        day = func.substr(j.created_at, 1, 10)
    media = select(
        day.label("day"),
        j.model.label("model"),
        literal(1).label("requests"),
        func.coalesce(j.prompt_tokens, 0).label("prompt_tokens"),
        func.coalesce(j.completion_tokens, 0).label("completion_tokens"),
        func.coalesce(j.cost, 0).label("cost"),
    ).where(
        MEDIA_ROW,
        j.account_id == account_id,
        j.created_at >= dt.datetime.combine(start, dt.time(), dt.UTC),
        j.created_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
    )
    both = union_all(logged, media).subquery()
    stmt = (
        select(
            both.c.day,
            both.c.model,
            func.sum(both.c.requests),
            func.sum(both.c.prompt_tokens),
            func.sum(both.c.completion_tokens),
            func.sum(both.c.cost),
        )
        .group_by(both.c.day, both.c.model)
        .order_by(both.c.day, both.c.model)
    )
    return [
        {
            "date": row[0],
            "model": row[1],
            "requests": int(row[2]),
            "prompt_tokens": int(row[3]),
            "completion_tokens": int(row[4]),
            "cost": int(row[5]),
        }
        for row in (await conn.execute(stmt)).all()
    ]


async def latency_percentiles(
    conn: AsyncConnection,
    account_id: str,
    start: dt.date,
    end: dt.date,
    model: str | None = None,
    wanted: Sequence[float] = (50, 95),
) -> dict[float, float | None]:
    """Latency percentiles (ms) of the job log's requests over the days, from the rollups' sketch."""
    c = USAGE_ROLLUPS.c
    stmt = (
        select(c.bucket, func.sum(c.requests))
        .where(c.account_id == account_id, c.day >= start.isoformat(), c.day <= end.isoformat())
        .group_by(c.bucket)
    )
    if model is not None:
        stmt = stmt.where(c.model == model)
    counts = {int(b): int(n) for b, n in (await conn.execute(stmt)).all()}
    return rollups.percentiles(counts, wanted)


async def latency_by_model(
    conn: AsyncConnection, account_id: str, start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """p50 and p95 latency (ms) per model over the days, from the rollups' sketch (the console's table)."""
    c = USAGE_ROLLUPS.c
    stmt = (
        select(c.model, c.bucket, func.sum(c.requests))
        .where(c.account_id == account_id, c.day >= start.isoformat(), c.day <= end.isoformat())
        .group_by(c.model, c.bucket)
    )
    by_model: dict[str, dict[int, int]] = {}
    for model, bucket, requests in (await conn.execute(stmt)).all():
        by_model.setdefault(model, {})[int(bucket)] = int(requests)
    out = []
    for model, counts in sorted(by_model.items()):
        known = sum(n for b, n in counts.items() if b != rollups.NO_LATENCY)
        if not known:
            continue
        p = rollups.percentiles(counts, (50, 95))
        out.append({"model": model, "count": known, "p50": p[50], "p95": p[95]})
    return out
