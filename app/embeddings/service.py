"""Embeddings: one upstream call (failing over between channels), the body relayed as it came, the
job recorded afterwards."""

from __future__ import annotations

import time
from typing import Any

from app.accounts.auth import Principal
from app.channels.catalog import Route
from app.db import utcnow
from app.embeddings.schemas import EmbeddingParams
from app.errors import GatewayError
from app.jobs.models import JobKind, JobStatus
from app.jobs.recorder import JobRecord
from app.providers.base import EmbedCall
from app.providers.errors import ProviderError
from app.resources import Resources
from app.routing import new_plan


def _record(
    res: Resources,
    principal: Principal,
    job_id: str,
    params: EmbeddingParams,
    route: Route | None,
    started: float,
    created_at: Any,
    status: JobStatus,
    usage: dict[str, Any] | None,
    http_status: int,
    attempts: list[dict[str, Any]],
    error: tuple[str, str] | None = None,
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
            channel_id=None if route is None else route.channel_id,
            usage=usage,
            latency_ms=latency,
            http_status=http_status,
            error_code=None if error is None else error[0],
            error_message=None if error is None else error[1],
            created_at=created_at,
            attempts_log=attempts,
        )
    )


async def embed(
    res: Resources, principal: Principal, job_id: str, params: EmbeddingParams, body: dict[str, Any]
) -> bytes:
    started, created_at = time.perf_counter(), utcnow()
    attempts: list[dict[str, Any]] = []
    plan = new_plan(res, params.model, attempts)

    def failed(route: Route | None, gateway_error: GatewayError, detail: str) -> None:
        status, error = gateway_error.status_code, (gateway_error.code or "upstream_error", detail)
        failure = JobStatus.FAILED
        _record(res, principal, job_id, params, route, started, created_at, failure, None, status, attempts, error)
        gateway_error.headers["x-request-id"] = job_id

    while (route := await plan.next()) is not None:
        call = EmbedCall({**body, "model": route.upstream_model}, params.model)
        try:
            with res.reaper.bounded(route.policy.total_timeout, "total"):
                result = await res.providers[route.provider].embed(route, call)
        except ProviderError as exc:
            if (gateway_error := plan.failed(route, exc)) is None:
                continue
            failed(route, gateway_error, exc.message)
            raise gateway_error from exc
        except BaseException:
            plan.abandon(route)
            raise
        plan.succeeded(route)
        usage = result.usage.as_dict()
        _record(res, principal, job_id, params, route, started, created_at, JobStatus.COMPLETED, usage, 200, attempts)
        return result.body
    gateway_error = plan.exhausted()
    failed(plan.last, gateway_error, gateway_error.message)
    raise gateway_error
