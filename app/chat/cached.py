"""Chat completions through the response cache (app/cache/): a stored answer (a hit), a wait for an
identical request in flight (coalesced), or the first request, whose answer is stored when it ends well.

Money: a hit or a coalesced request is billed at the cache price (`price_bp` of what the answer cost,
0 by default), holds exactly that (nothing when free), reserves no tokens (TPM does not count it, RPM
does) and keeps `usage` as the upstream reported it; its job row says `hit` or `coalesced` and what it
saved. The first request is an ordinary request, billed in full.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from app.cache.flights import Abandoned, Flight
from app.cache.keys import entry_key
from app.cache.replay import DONE, Assembler, frame, live_chunk, replay
from app.channels.routing import resolve
from app.chat import service
from app.chat.admission import AdmissionResources
from app.chat.service import ChatContext, ChatResources
from app.core.errors import GatewayError, UpstreamFailed
from app.core.money import ModelPrice, token_cost
from app.jobs.models import JobKind, JobStatus
from app.jobs.records import JobRecord
from app.providers.base import StreamEvent, Usage

if TYPE_CHECKING:
    from app.cache.policy import CacheMode
    from app.cache.store import CacheStore

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode
Headers = list[tuple[bytes, bytes]]


class CachedChatResources(ChatResources, AdmissionResources, Protocol):
    cache: CacheStore


class Answer(msgspec.Struct):
    status: str
    """`hit`, `coalesced` or `miss`: the `x-heytoken-cache` header."""
    completion: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None


async def serve(
    res: CachedChatResources,
    ctx: ChatContext,
    mode: CacheMode,
    admit: Callable[[], Awaitable[None]],
    set_headers: Callable[[Headers], None],
) -> Answer:
    """`admit()` admits the request as an ordinary one (the first request of a flight)."""
    catalog = res.catalog.current
    resolve(catalog, ctx.request.model)  # an unknown model is a 404 before the cache is read
    ctx.price = catalog.price_for(ctx.request.model)
    cache = res.cache
    key = entry_key(cache.prefix, "shared" if mode.shared else ctx.principal.account_id, "chat", ctx.body)
    while mode.read:
        flight = cache.flights.get(key)
        if flight is None:
            raw = await cache.get(key)
            stored = _stored(raw)
            if stored is not None:
                cache.metrics.hits += 1
                return await _from_stored(res, ctx, mode, stored, "hit", set_headers)
            flight = cache.flights.get(key)  # one may have started while Redis answered
        if flight is None:
            break
        try:
            return await _follow(res, ctx, mode, flight, set_headers)
        except Abandoned:
            continue
    return await _lead(res, ctx, mode, key, admit)


def _stored(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = _decode(raw)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("usage"), dict) else None


def _charges(ctx: ChatContext, usage: Usage, price_bp: int) -> tuple[int, int]:
    """(what the answer costs at the account's prices, what a cached copy of it costs)."""
    price: ModelPrice = ctx.price
    if price.is_free:
        return 0, 0
    full = token_cost(
        price, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, ctx.principal.multiplier_bp
    )
    return full, full * price_bp // 10_000


async def _admit_cached(res: CachedChatResources, ctx: ChatContext, hold: int, set_headers: Any) -> None:
    """RPM and RPH count the request; no tokens are reserved; the hold is the exact charge."""
    ctx.admission = await res.gate.admit(ctx.principal, ctx.job_id, hold=hold, load_balance=res.load_balance)
    set_headers(ctx.admission.headers)


def _record(
    res: CachedChatResources,
    ctx: ChatContext,
    cache_status: str,
    usage: Usage | None,
    full: int,
    charge: int,
    status: JobStatus = JobStatus.COMPLETED,
    error: tuple[str, str] | None = None,
    http_status: int = 200,
) -> None:
    res.cache.metrics.saved += full - charge
    now = time.perf_counter()
    res.recorder.record(
        JobRecord(
            id=ctx.job_id,
            kind=JobKind.CHAT,
            status=status,
            account_id=ctx.principal.account_id,
            api_key_id=ctx.principal.key_id,
            model=ctx.request.model,
            stream=ctx.request.stream,
            usage=usage.as_dict() if usage else None,
            latency_ms=round((now - ctx.started) * 1000),
            ttft_ms=None if ctx.first_byte_at is None else round((ctx.first_byte_at - ctx.started) * 1000),
            http_status=http_status,
            error_code=None if error is None else error[0],
            error_message=None if error is None else error[1],
            attempts_log=[],
            created_at=ctx.created_at,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            hold_amount=ctx.admission.hold if ctx.admission else None,
            cost=charge,
            cache_status=cache_status,
            cache_saved=full - charge,
            admission=ctx.admission,
        )
    )


async def _from_stored(
    res: CachedChatResources, ctx: ChatContext, mode: CacheMode, stored: dict[str, Any], status: str, set_headers: Any
) -> Answer:
    """A whole answer (stored, or a finished flight's) served as this request's own."""
    usage = Usage.from_openai(stored["usage"]) or Usage()
    full, charge = _charges(ctx, usage, mode.price_bp)
    await _admit_cached(res, ctx, charge, set_headers)
    ctx.first_byte_at = time.perf_counter()
    _record(res, ctx, status, usage, full, charge)
    usage_out = {**stored["usage"], "cost": charge}
    if not ctx.request.stream:
        return Answer(status, completion={**stored, "id": ctx.job_id, "usage": usage_out})
    frames = replay(stored, ctx.job_id, usage_out if ctx.request.include_usage else None)
    return Answer(status, stream=_iterate(frames))


async def _iterate(frames: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in frames:
        yield item


async def _follow(
    res: CachedChatResources, ctx: ChatContext, mode: CacheMode, flight: Flight, set_headers: Any
) -> Answer:
    """Wait for an identical request in flight. A streamed request follows a streamed flight live (when
    a hit is free: its price is known only at the end); everything else gets the whole answer."""
    res.cache.metrics.coalesced += 1
    ctx.cache_status = "coalesced"
    flight.join()
    try:
        if ctx.request.stream and mode.price_bp == 0:
            while not flight.chunks and not flight.done:
                await flight.changed()
            if flight.chunks:
                await _admit_cached(res, ctx, 0, set_headers)
                flight.join()  # the live relay's own share, taken before this one is given back
                return Answer("coalesced", stream=_live(res, ctx, flight))
        try:
            stored = await flight.outcome()
        except GatewayError as exc:
            raise _own_error(res, ctx, exc) from None
    finally:
        flight.leave()
    return await _from_stored(res, ctx, mode, stored, "coalesced", set_headers)


def _own_error(res: CachedChatResources, ctx: ChatContext, exc: GatewayError) -> GatewayError:
    """The flight's error, as this request's answer (its own request id) and its own failed job."""
    error = copy.copy(exc)
    error.headers = {**exc.headers, "x-request-id": ctx.job_id}
    _record(
        res,
        ctx,
        "coalesced",
        None,
        0,
        0,
        JobStatus.FAILED,
        (error.code or "upstream_error", error.message),
        error.status_code,
    )
    return error


async def _live(res: CachedChatResources, ctx: ChatContext, flight: Flight) -> AsyncIterator[bytes]:
    """A streamed flight's chunks as they arrive, under this request's id; leaving cancels nothing."""
    status, error, usage = JobStatus.CANCELLED, None, None
    try:
        i = 0
        while True:
            while i < len(flight.chunks):
                chunk = flight.chunks[i]
                i += 1
                if chunk.get("choices"):
                    if ctx.first_byte_at is None:
                        ctx.first_byte_at = time.perf_counter()
                    yield live_chunk(chunk, ctx.job_id)
            if flight.done:
                break
            await flight.changed()
        if flight.error is None:
            status, usage = JobStatus.COMPLETED, Usage.from_openai(flight.result["usage"])
            if ctx.request.include_usage:
                first = flight.chunks[0] if flight.chunks else {}
                yield frame({**first, "id": ctx.job_id, "choices": [], "usage": {**flight.result["usage"], "cost": 0}})
        else:
            status, error = JobStatus.FAILED, ("upstream_error", "The upstream stream failed.")
            yield frame({"error": {"message": error[1], "type": "server_error", "param": None, "code": error[0]}})
        yield DONE
    finally:
        flight.leave()
        full = _charges(ctx, usage, 0)[0] if usage else 0
        _record(res, ctx, "coalesced", usage, full, 0, status, error)


async def _lead(
    res: CachedChatResources, ctx: ChatContext, mode: CacheMode, key: str, admit: Callable[[], Awaitable[None]]
) -> Answer:
    cache = res.cache
    cache.metrics.misses += 1
    ctx.cache_status = "miss"
    flight = cache.flights.lead(key)
    try:
        await admit()
        if not ctx.request.stream:
            completion = await service.complete(res, ctx)
        else:
            route, stream = await service.open_stream(res, ctx)
    except BaseException as exc:
        # Refused by its own limits: the waiters try for themselves. An upstream failure is theirs too.
        flight.fail(exc if isinstance(exc, GatewayError) and ctx.admission is not None else Abandoned())
        cache.flights.land(key, flight)
        raise
    if not ctx.request.stream:
        usage = completion.get("usage")
        if not isinstance(usage, dict):  # nothing to bill a copy by: served, not stored
            flight.fail(Abandoned())
            cache.flights.land(key, flight)
            return Answer("miss", completion=completion)
        stored = {**completion, "id": "", "usage": {k: v for k, v in usage.items() if k != "cost"}}
        flight.finish(stored)
        if mode.store:
            await cache.put(key, _encode(stored), mode.ttl)
        cache.flights.land(key, flight)
        return Answer("miss", completion=completion)

    assembler = Assembler()

    def tap(event: StreamEvent) -> None:
        if event.end:
            return
        try:
            chunk = _decode(event.data)
        except msgspec.DecodeError:
            assembler.storable = False
            return
        if isinstance(chunk, dict):
            assembler.add(chunk)
            flight.add_chunk(chunk)

    async def end() -> None:
        stored = assembler.completion() if stream.stats.finished else None
        if stored is None:
            # Never a partial or failed stream in the cache; the waiters' streams end with an error.
            flight.fail(UpstreamFailed("The upstream stream did not finish cleanly."))
            return
        flight.finish(stored)
        if mode.store:
            await cache.put(key, _encode(stored), mode.ttl)

    ctx.tap = tap
    flight.join()  # the first request's share, before any waiter could leave the flight empty
    flight.pump(service.relay(res, ctx, route, stream), end)
    assert flight.task is not None
    flight.task.add_done_callback(lambda _: cache.flights.land(key, flight))
    return Answer("miss", stream=flight.own_frames())
