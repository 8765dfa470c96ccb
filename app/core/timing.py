"""Per-request timing: how long the gateway itself spent on a request, the upstream wait excluded.

The chat adapters' upstream calls (app.providers.common) add to the current request's timing the time
spent waiting for the upstream: until the whole answer, or until the response headers and then each
wait for a body chunk. What is left of the elapsed time is the gateway's own (parsing, auth, routing,
encoding, the event loop).
"""

from __future__ import annotations

from contextvars import ContextVar


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
