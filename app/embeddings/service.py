"""Embeddings: one upstream call, the body relayed as it came, the job recorded afterwards."""

from __future__ import annotations

import time
from typing import Any

from app.accounts.auth import Principal
from app.channels.catalog import Route
from app.db import utcnow
from app.embeddings.schemas import EmbeddingParams
from app.jobs.models import JobKind, JobStatus
from app.jobs.recorder import JobRecord
from app.providers.base import EmbedCall
from app.providers.errors import ProviderError
from app.resources import Resources
from app.routing import resolve, to_gateway_error


def _record(
    res: Resources,
    principal: Principal,
    job_id: str,
    params: EmbeddingParams,
    route: Route,
    started: float,
    created_at: Any,
    status: JobStatus,
    usage: dict[str, Any] | None,
    http_status: int,
    error: str | None = None,
) -> None:
    latency = round((time.perf_counter() - started) * 1000)
    res.recorder.record(
        JobRecord(
            id=job_id,
            kind=JobKind.EMBEDDING,
            status=status,
            account_id=principal.account_id,
            api_key_id=principal.key_id,
            model=params.model,
            channel_id=route.channel_id,
            usage=usage,
            latency_ms=latency,
            http_status=http_status,
            error_code=None if error is None else "upstream_error",
            error_message=error,
            created_at=created_at,
            attempts_log=[
                {
                    "channel": route.channel_name,
                    "outcome": "ok" if error is None else "upstream_error",
                    "latency_ms": latency,
                }
            ],
        )
    )


async def embed(
    res: Resources, principal: Principal, job_id: str, params: EmbeddingParams, body: dict[str, Any]
) -> bytes:
    started, created_at = time.perf_counter(), utcnow()
    route = resolve(res.catalog.current, params.model)[0]
    provider = res.providers[route.provider]
    call = EmbedCall({**body, "model": route.upstream_model}, params.model)
    try:
        result = await provider.embed(route, call)
    except ProviderError as exc:
        gateway_error = to_gateway_error(exc, route)
        _record(
            res,
            principal,
            job_id,
            params,
            route,
            started,
            created_at,
            JobStatus.FAILED,
            None,
            gateway_error.status_code,
            exc.message,
        )
        raise gateway_error from exc
    _record(
        res, principal, job_id, params, route, started, created_at, JobStatus.COMPLETED, result.usage.as_dict(), 200
    )
    return result.body
