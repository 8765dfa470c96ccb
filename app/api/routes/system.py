"""Liveness and readiness probes (no auth)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from sqlalchemy import text

from app.api.deps import resources_of


@get("/healthz", operation_id="health", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="ready", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    res = resources_of(request)
    checks: dict[str, str] = {}
    try:
        async with res.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await res.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    checks["catalog"] = "ok" if checks["database"] == "ok" and await res.catalog.ensure_loaded() else "not loaded"
    ok = all(v == "ok" for v in checks.values())
    return Response({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)
