"""The observability's own cost per request, in isolation (no network, no server): µs per call.

End to end, gateway vs gateway-bare differ by less than a shared machine's run-to-run noise; this
times the pieces themselves: the ASGI wrapper around a trivial app, the upstream-wait accounting of
app.providers.common (an `UpstreamResponse` read to its end, with and without a request timing), and
the job recorder's metrics observer.
"""

from __future__ import annotations

import time
from typing import Any

from app.core.timing import begin, current, end
from app.jobs.records import JobRecord
from app.observability.metrics import Metrics
from app.observability.middleware import ObservabilityMiddleware
from app.providers.common import UpstreamResponse


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


async def _send(message: Any) -> None:
    return None


async def _receive() -> Any:
    return {}


class _Content:
    """An aiohttp response body with its chunks already there (no network)."""

    def __init__(self, chunks: int) -> None:
        self._left = chunks

    async def readany(self) -> bytes:
        self._left -= 1
        return b"data: {}\n\n" if self._left >= 0 else b""


class _Response:
    def __init__(self, chunks: int) -> None:
        self.content = _Content(chunks)
        self.headers: dict[str, str] = {}


async def _read_stream(chunks: int = 10) -> None:
    async for _ in UpstreamResponse(_Response(chunks), current()):  # type: ignore[arg-type]
        pass


async def _per_call(fn: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - started) / n * 1e6


async def _best_of(a: Any, b: Any, n: int, rounds: int = 5) -> tuple[float, float]:
    """Warm both up, then alternate them and keep each one's best round (the least disturbed)."""
    await _per_call(a, n // 10 + 1)
    await _per_call(b, n // 10 + 1)
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(await _per_call(a, n))
        times_b.append(await _per_call(b, n))
    return min(times_a), min(times_b)


async def measure(n: int = 20000) -> dict[str, float]:
    scope = {"type": "http", "method": "POST", "path_template": "/v1/chat/completions"}
    wrapped = ObservabilityMiddleware(_app, Metrics(), True)
    bare_us, wrapped_us = await _best_of(
        lambda: _app(dict(scope), _receive, _send), lambda: wrapped(dict(scope), _receive, _send), n
    )

    plain_us, _ = await _best_of(_read_stream, _read_stream, n // 10)
    _, token = begin(time.perf_counter())
    try:
        _, timed_us = await _best_of(_read_stream, _read_stream, n // 10)
    finally:
        end(token)

    metrics = Metrics()
    record = JobRecord(
        id="chatcmpl-x",
        kind="chat",
        status="completed",
        account_id="acct",
        api_key_id="key",
        model="bench-chat",
        ttft_ms=3,
        attempts_log=[{"channel": "mock", "outcome": "ok", "latency_ms": 1}],
    )

    async def observe() -> None:
        metrics.observe_job(record)

    observe_us = await _per_call(observe, n)
    return {
        "middleware_us": wrapped_us - bare_us,
        "upstream_timing_us": max(0.0, timed_us - plain_us),
        "job_observer_us": observe_us,
        "total_us": (wrapped_us - bare_us) + max(0.0, timed_us - plain_us) + observe_us,
        "stream_read_no_network_us": plain_us,
    }
