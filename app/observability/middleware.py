"""The ASGI wrapper around the app's routing: `x-heytoken-overhead-ms` and the request metrics.

The route label is the matched path template (`(unmatched)` for unknown paths), so label values stay
bounded whatever clients send. The overhead is taken when the response starts: for a plain answer that
is after the upstream body was read and the reply encoded; for a stream, once the upstream accepted it
and before the first chunk is relayed.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core import timing

if TYPE_CHECKING:
    from app.observability.metrics import Metrics

HEADER = b"x-heytoken-overhead-ms"
UNMATCHED = "(unmatched)"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None, header: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.header = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        metrics, header = self.metrics, self.header
        req_timing, token = timing.begin(perf_counter())
        status = 500

        async def send_timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                overhead = req_timing.overhead(perf_counter())
                if header:
                    value = (HEADER, b"%.3f" % (overhead * 1000))
                    headers = message.get("headers")
                    if isinstance(headers, list):
                        headers.append(value)
                    else:
                        message["headers"] = [*(headers or ()), value]
                if metrics is not None:
                    metrics.observe_overhead(scope.get("path_template", UNMATCHED), overhead)
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            timing.end(token)
            if metrics is not None:
                route = scope.get("path_template", UNMATCHED)
                metrics.observe_request(route, scope["method"], status, req_timing, perf_counter() - req_timing.start)
