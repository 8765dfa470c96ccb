"""Chat completions: pick the upstream, call it or relay its stream, record the job afterwards.

Nothing here touches the database or Redis before the upstream call: the routes come from the
in-process catalog, cooldowns from this process's copy of the board (app.channels.routing), and the job row is
handed to the batched recorder once the answer is done. A failing channel is replaced by the next one
as long as nothing has reached the client: for a stream, until its first event (app.chat.guard).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from anyio import CancelScope

from app.accounts.auth import Principal
from app.billing.limits.service import Admission
from app.channels.catalog import Route
from app.channels.routing import RoutingResources, new_plan, report_failure
from app.chat.guard import open_guarded
from app.chat.schemas import CAP_FIELDS, GATEWAY_ONLY_FIELDS, ChatRequest
from app.core.db import utcnow
from app.core.errors import GatewayError
from app.core.money import FREE, ModelPrice, token_cost
from app.core.tokens import estimate_prompt_tokens, estimate_text_tokens
from app.core.upstream_errors import ProviderError
from app.jobs.models import JobKind, JobStatus
from app.jobs.records import JobRecord
from app.providers.base import ChatCall, ChatResult, ChatStream, StreamEvent, StreamStats, Usage

if TYPE_CHECKING:
    from app.billing.limits.service import Gate
    from app.core.deadlines import Reaper
    from app.jobs.recorder import JobRecorder
    from app.providers.base import Provider


class ChatResources(RoutingResources, Protocol):
    """What a chat completion uses of the process's resources (app/api/resources.py passes them in)."""

    gate: Gate
    providers: dict[str, Provider]
    reaper: Reaper
    recorder: JobRecorder


DEFAULT_TEMPERATURE = 0.7
# OpenAI's reasoning models refuse `temperature`; the default is not sent to them.
_NO_TEMPERATURE = re.compile(r"^(o\d|gpt-5)")
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class ChatContext:
    principal: Principal
    job_id: str
    request: ChatRequest
    body: dict[str, Any]
    """The decoded body as the client sent it: the fields the gateway does not read pass through."""
    started: float = field(default_factory=time.perf_counter)
    created_at: Any = field(default_factory=utcnow)
    first_byte_at: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """The job's attempts log: one entry per channel tried or skipped, in order."""
    admission: Admission | None = None
    price: ModelPrice = FREE
    cap: int = 0
    """Output tokens each choice may produce upstream, thinking included: set by the admission, held
    for, and sent by every adapter."""
    thinking: int = 0
    """The thinking budget inside `cap` (0 unless `reasoning: true`)."""
    cache_status: str | None = None
    """`miss` when the response cache is on for the request (app.chat.cached)."""
    tap: Callable[[StreamEvent], None] | None = None
    """Sees every upstream event of a relayed stream (the cache assembles and fans it out)."""

    def charges(self, usage: Usage | None) -> tuple[int, int]:
        """(what the upstream's usage costs at the account's prices, the charge): the charge is never
        more than the hold; the difference is the house's (see app.jobs.capture)."""
        if usage is None or self.price.is_free:
            return 0, 0
        full = token_cost(
            self.price, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, self.principal.multiplier_bp
        )
        return full, full if self.admission is None else min(full, self.admission.hold)

    def cost(self, usage: Usage | None) -> int:
        return self.charges(usage)[1]


def upstream_body(ctx: ChatContext, route: Route) -> dict[str, Any]:
    body = ctx.body
    out = {k: v for k, v in body.items() if k not in GATEWAY_ONLY_FIELDS and k not in CAP_FIELDS}
    out["model"] = route.upstream_model
    if "temperature" not in out:
        default = route.options.get("default_temperature", DEFAULT_TEMPERATURE)
        if default is not None and not _NO_TEMPERATURE.match(route.upstream_model):
            out["temperature"] = default
    out[_cap_field(ctx.request, route)] = ctx.cap
    return out


def _cap_field(request: ChatRequest, route: Route) -> str:
    """The upstream reads one cap field: OpenAI's reasoning models only `max_completion_tokens`, other
    OpenAI-compatible servers often only `max_tokens`; a channel can say (option `cap_field`)."""
    field = route.options.get("cap_field")
    if field in CAP_FIELDS:
        return str(field)
    if _NO_TEMPERATURE.match(route.upstream_model) or request.max_completion_tokens is not None:
        return "max_completion_tokens"
    return "max_tokens"


def _call(ctx: ChatContext, route: Route) -> ChatCall:
    return ChatCall(
        upstream_body(ctx, route), ctx.job_id, ctx.request.model, ctx.request.reasoning, ctx.cap, ctx.thinking
    )


def _record(
    res: ChatResources,
    ctx: ChatContext,
    route: Route | None,
    status: JobStatus,
    *,
    usage: Usage | None,
    http_status: int,
    error: tuple[str, str] | None = None,
) -> None:
    now = time.perf_counter()
    full, charge = ctx.charges(usage)
    res.recorder.record(
        JobRecord(
            id=ctx.job_id,
            kind=JobKind.CHAT,
            status=status,
            account_id=ctx.principal.account_id,
            api_key_id=ctx.principal.key_id,
            model=ctx.request.model,
            channel_id=None if route is None else route.channel_id,
            stream=ctx.request.stream,
            usage=usage.as_dict() if usage else None,
            latency_ms=round((now - ctx.started) * 1000),
            ttft_ms=None if ctx.first_byte_at is None else round((ctx.first_byte_at - ctx.started) * 1000),
            http_status=http_status,
            error_code=None if error is None else error[0],
            error_message=None if error is None else error[1],
            attempts_log=ctx.attempts,
            created_at=ctx.created_at,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            hold_amount=ctx.admission.hold if ctx.admission else None,
            cost=charge,
            overrun=full - charge,
            cache_status=ctx.cache_status,
            admission=ctx.admission,
        )
    )


def _give_up(
    res: ChatResources, ctx: ChatContext, route: Route | None, error: GatewayError, detail: str
) -> GatewayError:
    _record(
        res,
        ctx,
        route,
        JobStatus.FAILED,
        usage=None,
        http_status=error.status_code,
        error=(error.code or "upstream_error", detail),
    )
    error.headers["x-request-id"] = ctx.job_id  # the failed job can be looked up too
    return error


async def complete(res: ChatResources, ctx: ChatContext) -> dict[str, Any]:
    async def attempt(route: Route) -> ChatResult:
        with res.reaper.bounded(route.policy.total_timeout, "total"):
            return await res.providers[route.provider].chat(route, _call(ctx, route))

    route, result = await new_plan(res, ctx.request.model, ctx.attempts).run(attempt, partial(_give_up, res, ctx))
    _record(res, ctx, route, JobStatus.COMPLETED, usage=result.usage, http_status=200)
    if isinstance(result.completion.get("usage"), dict):
        result.completion["usage"]["cost"] = ctx.cost(result.usage)
    return result.completion


async def open_stream(res: ChatResources, ctx: ChatContext) -> tuple[Route, ChatStream]:
    """Open the upstream stream and read its first event before any byte goes to the client, so a
    failure here is still an ordinary HTTP error response, or a failover to the next channel."""

    def attempt(route: Route) -> Awaitable[ChatStream]:
        return open_guarded(res.reaper, res.providers[route.provider], route, _call(ctx, route))

    return await new_plan(res, ctx.request.model, ctx.attempts).run(attempt, partial(_give_up, res, ctx))


def stream_usage(ctx: ChatContext, stats: StreamStats, status: JobStatus) -> Usage:
    """The upstream's usage, or — for a stream cut short — the prompt estimate plus what was relayed.
    A stream the upstream broke before any content costs nothing; one the client left costs at least
    its prompt (the upstream read it)."""
    if stats.usage is not None:
        return stats.usage
    if status == JobStatus.FAILED and stats.content_chunks == 0:
        return Usage(estimated=True)
    prompt = estimate_prompt_tokens(ctx.body["messages"])
    completion = max(stats.content_chunks, estimate_text_tokens(stats.content_chars))
    if ctx.cap:
        # An upstream cannot produce more than it was allowed: the estimate never exceeds that (nor,
        # so, the hold), whatever a misbehaving upstream or a slow disconnect let through.
        completion = min(completion, ctx.cap * ctx.request.n)
    return Usage(prompt, completion, prompt + completion, estimated=True)


async def relay(res: ChatResources, ctx: ChatContext, route: Route, stream: ChatStream) -> AsyncIterator[bytes]:
    """Relay upstream events as SSE; always closes the upstream and records the job, whatever happens."""
    include_usage = ctx.request.include_usage
    tap = ctx.tap
    status, error = JobStatus.COMPLETED, None
    ended = recorded = False

    def record() -> None:
        # Before the final [DONE] when the stream ends well: a client that reads it and asks for the job
        # at once finds it (app.jobs.pending), not a 404 while the lease is released.
        nonlocal recorded
        if not recorded:
            recorded = True
            usage = stream_usage(ctx, stream.stats, status)
            _record(res, ctx, route, status, usage=usage, http_status=200, error=error)

    try:
        async for batch in stream:
            if tap is not None:
                for event in batch:
                    tap(event)
            # The events of one upstream read go out in one send: never waiting for more.
            if len(batch) == 1 and not batch[0].usage_only:
                data = batch[0].data
                ended = batch[0].end
            else:
                parts = []
                for event in batch:
                    if event.usage_only:
                        if not include_usage:
                            continue
                        parts.append(_with_cost(event.data, ctx, stream.stats.usage))
                    else:
                        parts.append(event.data)
                        ended = ended or event.end
                if not parts:
                    continue
                data = b"\n\ndata: ".join(parts)
            if ctx.first_byte_at is None:
                ctx.first_byte_at = time.perf_counter()
            if ended:
                record()
            yield b"data: " + data + b"\n\n"
        if not ended:
            record()
            yield b"data: [DONE]\n\n"
    except ProviderError as exc:
        # Bytes already went out: no failover, no second answer spliced in. An in-band error event
        # makes the OpenAI SDK raise instead of hanging.
        status, error = JobStatus.FAILED, ("upstream_error", exc.message)
        report_failure(res.cooldowns, route, exc)
        if ctx.attempts:
            ctx.attempts[-1].update(outcome=exc.outcome, status=exc.status, error=exc.message[:500], mid_stream=True)
        body = {
            "error": {
                "message": f"The upstream stream failed: {exc.message}",
                "type": "server_error",
                "param": None,
                "code": "upstream_error",
            }
        }
        yield b"data: " + _encode(body) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except BaseException:
        if not stream.stats.finished:
            status, error = JobStatus.CANCELLED, ("client_disconnected", "The client closed the connection.")
        raise
    finally:
        with CancelScope(shield=True):
            await stream.aclose()
            if ctx.admission is not None:
                await res.gate.release_lease(ctx.admission)
        record()


def _with_cost(data: bytes, ctx: ChatContext, usage: Usage | None) -> bytes:
    """The final usage chunk carries the request's cost (decoded and re-encoded once per stream)."""
    try:
        chunk = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data
    if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
        chunk["usage"]["cost"] = ctx.cost(usage)
        return _encode(chunk)
    return data
