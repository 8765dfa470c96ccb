"""A Litestar Stream that always closes its iterator, whichever await a client disconnect lands on.

Litestar cancels the streaming task when the client goes away. If the cancellation lands inside our
generator, its own `finally` closes the upstream; if it lands on `send`, the generator would sit
suspended until garbage collection. Closing it here makes the upstream close at once in both cases.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from anyio import CancelScope
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Send


class _ClosingASGIStream(ASGIStreamingResponse):
    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        try:
            await super().send_body(send, receive)
        finally:
            iterator = self.iterator
            if isinstance(iterator, AsyncGenerator):
                with CancelScope(shield=True):
                    await iterator.aclose()


class ClosingStream(Stream):
    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs)
        assert isinstance(response, ASGIStreamingResponse)
        response.__class__ = _ClosingASGIStream
        return response
