"""A Litestar Stream that always closes its iterator, whichever await a client disconnect lands on.

Litestar cancels the streaming task when the client goes away. If the cancellation lands inside our
generator, its own `finally` closes the upstream; if it lands on `send`, the generator would sit
suspended until garbage collection. Closing it here makes the upstream close at once in both cases.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from anyio import CancelScope
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Send
from litestar.utils import get_enum_string_value


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
    """Builds its ASGI response through `_ClosingASGIStream`'s constructor, with the arguments
    Litestar's own `Stream.to_asgi_response` passes (its deprecated `app` argument aside)."""

    def to_asgi_response(
        self,
        app: Any,
        request: Any,
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIResponse:
        iterator = self.iterator
        if not isinstance(iterator, Iterable | Iterator | AsyncIterable | AsyncIterator) and callable(iterator):
            iterator = iterator()
        return _ClosingASGIStream(
            background=self.background or background,
            content_length=0,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            iterator=iterator,
            media_type=get_enum_string_value(media_type or self.media_type or MediaType.JSON),
            status_code=self.status_code or status_code,
        )
