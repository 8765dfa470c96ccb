"""Incremental Server-Sent Events splitting: bytes in (any chunking), `data` payloads out."""

from __future__ import annotations

from collections.abc import Iterator

from app.core.upstream_errors import UpstreamUnavailable

MAX_EVENT_BYTES = 8 * 1024 * 1024


class SSESplitter:
    """Feeds on raw bytes and yields each complete event's data (multi-line data joined by newlines).

    Memory is bounded: only one partial event is ever buffered, and an event over 8 MiB is an error.
    """

    __slots__ = ("_buffer", "event")

    def __init__(self) -> None:
        self._buffer = b""
        self.event: bytes | None = None
        """The `event:` field of the last event yielded (Anthropic names its events)."""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            data = self._data(buffer[start:end])
            start = end + 2
            if data is not None:
                yield data
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise UpstreamUnavailable("Upstream sent an SSE event larger than 8 MiB.")

    def _data(self, block: bytes) -> bytes | None:
        if block.startswith(b"data: ") and b"\n" not in block:
            self.event = None
            return block[6:]
        parts: list[bytes] = []
        self.event = None
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                value = line[5:]
                parts.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self.event = line[6:].strip()
        return b"\n".join(parts) if parts else None
