"""Usage: requests, tokens and cost by day and by model, as charts over a date range, and p50/p95
latency per model. The figures are GET /v1/usage's (app.jobs.usage)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import QueryParameter

from app.console.charts import bar_chart, legend
from app.console.pages import render, usd
from app.console.resources import account_id, resources
from app.core.errors import GatewayError
from app.jobs import usage

DateQuery = Annotated[dt.date | None, QueryParameter()]


@get("/usage")
async def usage_page(request: Request[Any, Any, Any], start: DateQuery = None, end: DateQuery = None) -> Response[Any]:
    try:
        first, last = usage.date_range(start, end)
    except GatewayError as exc:
        first, last = usage.date_range(None, None)
        error: str | None = exc.message
    else:
        error = None
    async with resources(request).sessionmaker() as session:
        conn = await session.connection()
        rows = await usage.usage_by_day(conn, account_id(request), first, last)
        latency = await usage.latency_by_model(conn, account_id(request), first, last)
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    models = sorted({r["model"] for r in rows})
    index = {d: i for i, d in enumerate(days)}

    def series(field: str) -> dict[str, list[float]]:
        out = {m: [0.0] * len(days) for m in models}
        for r in rows:
            value = r["prompt_tokens"] + r["completion_tokens"] if field == "tokens" else r[field]
            out[r["model"]][index[r["date"]]] += value
        return out

    per_model: dict[str, dict[str, int]] = {}
    for r in rows:
        m = per_model.setdefault(r["model"], {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0})
        for field in m:
            m[field] += r[field]
    charts = [
        ("Requests per day", bar_chart("Requests per day", days, series("requests"))),
        ("Tokens per day", bar_chart("Tokens per day", days, series("tokens"))),
        ("Cost per day", bar_chart("Cost per day", days, series("cost"), fmt=lambda v: usd(int(v)))),
    ]
    return render(
        request, "usage.html", start=first.isoformat(), end=last.isoformat(), charts=charts,
        legend=legend(models), per_model=sorted(per_model.items()), latency=latency, error=error,
        total_cost=sum(r["cost"] for r in rows), total_requests=sum(r["requests"] for r in rows),
    )  # fmt: skip


HANDLERS = [usage_page]
