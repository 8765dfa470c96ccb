"""Embeddings: one upstream call (failing over between channels), the body relayed as it came (with
the cost put into its usage), the job recorded afterwards."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Protocol

from app.accounts.auth import Principal
from app.channels.catalog import Route
from app.channels.routing import RoutingResources, new_plan
from app.chat.admission import Admitted
from app.core.db import utcnow
from app.core.errors import GatewayError
from app.core.money import token_cost
from app.embeddings.schemas import EmbeddingRequest
from app.jobs.models import JobKind, JobStatus
from app.jobs.records import JobRecord
from app.providers.base import EmbedCall, EmbedResult, Usage

if TYPE_CHECKING:
    from app.core.deadlines import Reaper
    from app.jobs.recorder import JobRecorder
    from app.providers.base import Provider


class EmbeddingResources(RoutingResources, Protocol):
    """What an embedding request uses of the process's resources (app/api/resources.py passes them in)."""

    providers: dict[str, Provider]
    reaper: Reaper
    recorder: JobRecorder


def _record(
    res: EmbeddingResources,
    principal: Principal,
    job_id: str,
    params: EmbeddingRequest,
    route: Route | None,
    admitted: Admitted,
    started: float,
    created_at: Any,
    status: JobStatus,
    usage: Usage | None,
    http_status: int,
    attempts: list[dict[str, Any]],
    error: tuple[str, str] | None = None,
    cache_status: str | None = None,
) -> int:
    """Hand the job row to the recorder; returns the request's cost."""
    full = 0
    if usage is not None and not admitted.price.is_free:
        full = token_cost(admitted.price, usage.prompt_tokens, 0, 0, principal.multiplier_bp)
    cost = min(full, admitted.admission.hold)  # beyond the hold: the house's (app.jobs.capture)
    res.recorder.record(
        JobRecord(
            id=job_id,
            kind=JobKind.EMBEDDING,
            status=status,
            account_id=principal.account_id,
            api_key_id=principal.key_id,
            model=params.model,
            channel_id=None if route is None else route.channel_id,
            usage=usage.as_dict() if usage else None,
            latency_ms=round((time.perf_counter() - started) * 1000),
            http_status=http_status,
            error_code=None if error is None else error[0],
            error_message=None if error is None else error[1],
            created_at=created_at,
            attempts_log=attempts,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=0 if usage else None,
            hold_amount=admitted.admission.hold,
            cost=cost,
            overrun=full - cost,
            cache_status=cache_status,
            admission=admitted.admission,
        )
    )
    return cost


async def embed(
    res: EmbeddingResources,
    principal: Principal,
    job_id: str,
    params: EmbeddingRequest,
    body: dict[str, Any],
    admitted: Admitted,
) -> bytes:
    result, cost = await embed_result(res, principal, job_id, params, body, admitted)
    return with_usage_cost(result.body, cost)


async def embed_result(
    res: EmbeddingResources,
    principal: Principal,
    job_id: str,
    params: EmbeddingRequest,
    body: dict[str, Any],
    admitted: Admitted,
    cache_status: str | None = None,
) -> tuple[EmbedResult, int]:
    """The upstream's answer as it came, and the request's cost (the job is recorded)."""
    started, created_at = time.perf_counter(), utcnow()
    attempts: list[dict[str, Any]] = []
    plan = new_plan(res, params.model, attempts)

    def record(
        route: Route | None,
        status: JobStatus,
        usage: Usage | None,
        http_status: int,
        error: tuple[str, str] | None = None,
    ) -> int:
        return _record(
            res,
            principal,
            job_id,
            params,
            route,
            admitted,
            started,
            created_at,
            status,
            usage,
            http_status,
            attempts,
            error,
            cache_status,
        )

    def give_up(route: Route | None, gateway_error: GatewayError, detail: str) -> GatewayError:
        record(
            route, JobStatus.FAILED, None, gateway_error.status_code, (gateway_error.code or "upstream_error", detail)
        )
        gateway_error.headers["x-request-id"] = job_id
        return gateway_error

    async def attempt(route: Route) -> EmbedResult:
        call = EmbedCall({**body, "model": route.upstream_model}, params.model)
        with res.reaper.bounded(route.policy.total_timeout, "total"):
            return await res.providers[route.provider].embed(route, call)

    route, result = await plan.run(attempt, give_up)
    return result, record(route, JobStatus.COMPLETED, result.usage, 200)


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
