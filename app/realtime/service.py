"""Opening and finishing a realtime session: the model, the admission (one request, a stream slot,
the first rolling hold), the upstream with failover before the session opens, and the job row.

Everything that can refuse the session happens here, before the client's socket is accepted, so a
refusal is an HTTP status with the OpenAI error envelope.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import insert, update

from app.accounts.auth import Principal
from app.billing.limits.service import Admission, Gate
from app.channels.catalog import Route
from app.channels.names import REALTIME_MODELS
from app.channels.routing import RoutingResources, new_plan, resolve
from app.core.db import utcnow
from app.core.errors import GatewayError, InvalidRequest
from app.core.ids import new_id
from app.core.upstream_errors import UpstreamRejected
from app.jobs.models import JOBS, JobKind, JobStatus
from app.realtime.billing import Meter
from app.realtime.local import LocalRealtime
from app.realtime.session import GOING_AWAY, NORMAL, SERVICE_RESTART, Ending
from app.realtime.upstream import RealtimeUpstream

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class RealtimeResources(RoutingResources, Protocol):
    """What a realtime session uses of the process's resources (app/api/resources.py passes them in)."""

    gate: Gate
    engine: AsyncEngine

    async def load_balance(self, account_id: str) -> int: ...


@dataclass(slots=True)
class Opened:
    job_id: str
    upstream: RealtimeUpstream
    meter: Meter
    admission: Admission
    route: Route
    attempts: list[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)


async def connect(res: RealtimeResources, route: Route) -> RealtimeUpstream:
    settings = res.settings
    if route.provider == "local":
        # An operator's extra local models named local-realtime-… are realtime too (priced demos, tests).
        if route.upstream_model not in REALTIME_MODELS and not route.upstream_model.startswith("local-realtime-"):
            raise UpstreamRejected(f"The local model '{route.upstream_model}' does not speak realtime.", status=400)
        return LocalRealtime(route.upstream_model, settings.realtime_max_output_tokens)
    # The socket relays (and the websockets client under them) are imported by the first session that
    # needs one, not by every web process at start-up (issue #23); Python keeps them imported after.
    if route.provider == "openai":
        from app.realtime.openai import OpenAIRelay

        return await OpenAIRelay.open(route, settings)
    if route.provider == "gemini":
        from app.realtime.gemini import GeminiLive

        return await GeminiLive.open(route, settings)
    raise UpstreamRejected(f"Channels of provider '{route.provider}' do not serve realtime sessions.", status=400)


async def open_session(res: RealtimeResources, principal: Principal, model: str | None) -> Opened:
    if not model:
        raise InvalidRequest("Name the model in the URL: /v1/realtime?model=…", param="model", code="missing_model")
    catalog = res.catalog.current
    resolve(catalog, model)
    price = catalog.price_for(model)
    job_id = new_id("rt_")
    admission = await res.gate.admit(principal, job_id, lease=True, load_balance=res.load_balance)
    meter = Meter(res.gate, res.engine, res.settings, principal, job_id, model, price, res.load_balance)
    attempts: list[dict[str, Any]] = []
    try:
        await meter.ensure_hold()
        try:
            route, upstream = await new_plan(res, model, attempts).run(lambda route: connect(res, route), _give_up)
        except GatewayError as exc:
            # No channel opened a socket: the refused session is a failed job, its attempts logged.
            error = {"error_code": exc.code, "error_message": exc.message[:2000], "completed_at": utcnow()}
            await _insert(res, principal, job_id, model, None, attempts, JobStatus.FAILED, exc.status_code, **error)
            exc.headers["x-request-id"] = job_id
            raise
    except BaseException:
        await meter.release()
        await res.gate.release_lease(admission)
        raise
    await _insert(res, principal, job_id, model, route.channel_id, attempts, JobStatus.IN_PROGRESS, 101)
    return Opened(job_id, upstream, meter, admission, route, attempts)


def _give_up(route: Route | None, error: GatewayError, detail: str) -> GatewayError:
    return error


async def _insert(
    res: RealtimeResources,
    principal: Principal,
    job_id: str,
    model: str,
    channel_id: str | None,
    attempts: list[dict[str, Any]],
    status: JobStatus,
    http_status: int,
    **more: Any,
) -> None:
    async with res.engine.begin() as conn:
        await conn.execute(
            insert(JOBS).values(
                id=job_id,
                kind=JobKind.REALTIME,
                status=status,
                account_id=principal.account_id,
                api_key_id=principal.key_id,
                model=model,
                channel_id=channel_id,
                stream=True,
                attempts_log=attempts,
                created_at=utcnow(),
                http_status=http_status,
                **more,
            )
        )


async def finish(res: RealtimeResources, opened: Opened, ending: Ending) -> None:
    """After the session: the hold released, the slot freed, the job row finished."""
    meter = opened.meter
    with contextlib.suppress(Exception):  # a broken upstream socket has nothing left to close
        await opened.upstream.close()
    await meter.release()
    await res.gate.release_lease(opened.admission)
    duration_ms = round((time.monotonic() - opened.started) * 1000)
    clean = ending.code in (NORMAL, GOING_AWAY, SERVICE_RESTART) or ending.by == "client"
    usage = {
        **meter.usage.as_openai(),
        "responses": meter.responses,
        "duration_ms": duration_ms,
        "close_code": ending.code,
        "close_reason": ending.reason,
        "closed_by": ending.by,
    }
    async with res.engine.begin() as conn:
        await conn.execute(
            update(JOBS)
            .where(JOBS.c.id == opened.job_id)
            .values(
                status=JobStatus.COMPLETED if clean else JobStatus.FAILED,
                usage=usage,
                latency_ms=duration_ms,
                completed_at=utcnow(),
                error_code=None if ending.reason in ("", "client_closed") and clean else ending.reason,
                error_message=None if clean else f"The session ended with code {ending.code}.",
                **meter.job_values(),
            )
        )
