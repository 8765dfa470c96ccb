"""Per-request timing: how long the gateway itself spent on a request, the upstream wait excluded.

`TimedTransport` wraps the upstream httpx transport and adds to the current request's timing the time
spent waiting for the upstream: until its response headers, and each wait for a body chunk. What is
left of the elapsed time is the gateway's own (parsing, auth, routing, encoding, the event loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from time import perf_counter

import httpx


class RequestTiming:
    __slots__ = ("channel", "model", "start", "upstream")

    def __init__(self, start: float) -> None:
        self.start = start
        self.upstream = 0.0
        """Seconds spent waiting for upstreams so far."""
        self.model = ""
        self.channel = ""

    def overhead(self, now: float) -> float:
        return max(0.0, now - self.start - self.upstream)


_current: ContextVar[RequestTiming | None] = ContextVar("heytoken_request_timing", default=None)


def current() -> RequestTiming | None:
    return _current.get()


def begin(start: float) -> tuple[RequestTiming, object]:
    timing = RequestTiming(start)
    return timing, _current.set(timing)


def end(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


class TimedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timing = _current.get()
        if timing is None:
            return await self._inner.handle_async_request(request)
        started = perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            timing.upstream += perf_counter() - started
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _TimedStream(response.stream, timing)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TimedStream(httpx.AsyncByteStream):
    __slots__ = ("_inner", "_timing")

    def __init__(self, inner: httpx.AsyncByteStream, timing: RequestTiming) -> None:
        self._inner = inner
        self._timing = timing

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        timing = self._timing
        try:
            while True:
                started = perf_counter()
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    timing.upstream += perf_counter() - started
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async def aclose(self) -> None:
        await self._inner.aclose()
