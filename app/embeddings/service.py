"""Embeddings: one upstream call, the body relayed as it came, the job recorded afterwards."""

from __future__ import annotations

import re
import time
from typing import Any

from app.accounts.auth import Principal
from app.admission import Admitted
from app.billing.money import token_cost
from app.channels.catalog import Route
from app.db import utcnow
from app.embeddings.schemas import EmbeddingParams
from app.jobs.models import JobKind, JobStatus
from app.jobs.recorder import JobRecord
from app.providers.base import EmbedCall, Usage
from app.providers.errors import ProviderError
from app.resources import Resources
from app.routing import resolve, to_gateway_error


def _record(
    res: Resources,
    principal: Principal,
    job_id: str,
    params: EmbeddingParams,
    route: Route,
    admitted: Admitted,
    started: float,
    created_at: Any,
    status: JobStatus,
    usage: Usage | None,
    http_status: int,
    error: str | None = None,
) -> int:
    latency = round((time.perf_counter() - started) * 1000)
    cost = 0
    if usage is not None and not admitted.price.is_free:
        cost = token_cost(admitted.price, usage.prompt_tokens, 0, 0, principal.multiplier_bp)
    res.recorder.record(
        JobRecord(
            id=job_id,
            kind=JobKind.EMBEDDING,
            status=status,
            account_id=principal.account_id,
            api_key_id=principal.key_id,
            model=params.model,
            channel_id=route.channel_id,
            usage=usage.as_dict() if usage else None,
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
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=0 if usage else None,
            hold_amount=admitted.admission.hold,
            cost=cost,
            admission=admitted.admission,
        )
    )
    return cost


async def embed(
    res: Resources, principal: Principal, job_id: str, params: EmbeddingParams, body: dict[str, Any], admitted: Admitted
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
            admitted,
            started,
            created_at,
            JobStatus.FAILED,
            None,
            gateway_error.status_code,
            exc.message,
        )
        raise gateway_error from exc
    cost = _record(
        res, principal, job_id, params, route, admitted, started, created_at, JobStatus.COMPLETED, result.usage, 200
    )
    return with_usage_cost(result.body, cost)


_USAGE = re.compile(rb'"usage"\s*:\s*\{\s*(\}?)')


def with_usage_cost(body: bytes, cost: int) -> bytes:
    """Put `cost` into the relayed body's `usage` object without re-encoding the (large) vectors."""
    at = body.rfind(b'"usage"')
    match = _USAGE.match(body, at) if at >= 0 else None
    if match is None:
        return body
    insert = b'"cost":' + str(cost).encode() + (b"" if match.group(1) else b",")
    end = match.start(1)
    return body[:end] + insert + body[end:]
