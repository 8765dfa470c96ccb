"""What the session relay needs of an upstream realtime connection, whatever speaks behind it."""

from __future__ import annotations

import asyncio
from typing import Protocol

from app.realtime.schemas import ClientEvent


class UpstreamClosed(Exception):
    """The upstream socket ended: `code` and `reason` say how (a clean end, or a failure)."""

    def __init__(self, reason: str, code: int = 1011) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class RealtimeUpstream(Protocol):
    async def send(self, event: ClientEvent, frame: str | bytes) -> None:
        """Pass on a client event (`frame` is the client's own text, for upstreams that relay it)."""

    async def recv(self) -> str | bytes:
        """The next server event, a JSON text in the OpenAI protocol; raises UpstreamClosed at the end."""

    async def close(self) -> None: ...


class QueuedUpstream:
    """An upstream whose server events are made in this process and wait in a queue."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | UpstreamClosed] = asyncio.Queue()

    def emit(self, frame: bytes) -> None:
        self._queue.put_nowait(frame)

    def end(self, reason: str, code: int = 1000) -> None:
        self._queue.put_nowait(UpstreamClosed(reason, code))

    async def recv(self) -> str | bytes:
        item = await self._queue.get()
        if isinstance(item, UpstreamClosed):
            self._queue.put_nowait(item)
            raise item
        return item
