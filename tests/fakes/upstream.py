"""A scriptable mock upstream HTTP server on 127.0.0.1, run in its own thread and event loop.

It speaks OpenAI's chat-completions and embeddings wire format by default. Tests script replies with
`MockUpstream.script(...)` (consumed in order, then the default applies) and read what it received from
`requests`; streamed replies note when the client went away (`disconnects`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    """Body for a non-streaming reply (default: an OpenAI object echoing the request)."""
    sse: list[Any] | None = None
    """Streamed payloads: dicts are JSON-encoded, str/bytes sent as the data line ('[DONE]' included
    only when listed). None on a stream request: a default 3-chunk stream with usage."""
    raw: bytes | None = None
    """Bytes written as they are (for malformed-stream tests)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_before: float = 0.0
    """Seconds to wait before sending anything (stall before the first byte)."""
    stall_after_headers: float = 0.0
    """Seconds to wait between the 200 headers and the first event (stall before the first token)."""
    chunk_delay: float = 0.0
    close_after: int | None = None
    """Drop the connection after this many SSE events (mid-stream failure)."""
    forever: bool = False
    """Keep streaming chunks until the client goes away."""
    refuse: bool = False
    """Close the connection without any answer."""
    hold_until: threading.Event | None = None
    """Wait for this event (set by the test) after `hold_after` events: a request kept in flight."""
    hold_after: int = 0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


def chat_completion(body: dict[str, Any], content: str = "Hello from the mock upstream.") -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    role: str | None = None,
    model: str = "upstream-model",
    extra_delta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    delta.update(extra_delta or {})
    return {
        "id": "chatcmpl-upstream-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(prompt: int = 11, completion: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def default_stream() -> list[Any]:
    return [
        chunk(role="assistant", content=""),
        chunk("Hello"),
        chunk(" from"),
        chunk(" upstream"),
        chunk(finish="stop"),
        usage_chunk(),
        "[DONE]",
    ]


class MockUpstream:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.disconnects: list[float] = []
        self.connections = 0
        self._scripts: dict[str, list[Reply]] = {}
        self.default: dict[str, Callable[[dict[str, Any]], Reply]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=type(self).__name__)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, path: str, *replies: Reply) -> None:
        """Queue replies for a path ('/v1/chat/completions', '/v1/embeddings', …), used in order."""
        self._scripts.setdefault(path, []).extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.disconnects.clear()
        self._scripts.clear()
        self.default.clear()

    def start(self) -> MockUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def calls(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]

    def frame(self, item: Any) -> bytes:
        """One streamed event on the wire (vendor mocks override this)."""
        if isinstance(item, bytes):
            data = item
        else:
            data = item.encode() if isinstance(item, str) else json.dumps(item).encode()
        return b"data: " + data + b"\n\n"

    def check(self, request: web.Request, body: Any) -> Reply | None:
        """A reply refusing a request that breaks the vendor's documented format (vendor mocks override this)."""
        return None

    def default_reply(self, path: str, body: Any) -> Reply:
        if path.endswith("/embeddings"):
            inputs = body.get("input") if isinstance(body, dict) else None
            count = len(inputs) if isinstance(inputs, list) and inputs and isinstance(inputs[0], str) else 1
            return Reply(
                json={
                    "object": "list",
                    "model": body.get("model"),
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.75]} for i in range(count)
                    ],
                    "usage": {"prompt_tokens": 5, "total_tokens": 5},
                }
            )
        if isinstance(body, dict) and body.get("stream"):
            return Reply(sse=default_stream())
        return Reply(json=chat_completion(body if isinstance(body, dict) else {}))

    def _next(self, path: str, body: Any) -> Reply:
        queue = self._scripts.get(path)
        if queue:
            return queue.pop(0)
        factory = self.default.get(path)
        if factory is not None:
            return factory(body)
        return self.default_reply(path, body)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append(Seen(request.path, dict(request.headers), body, time.monotonic()))
        reply = self.check(request, body) or self._next(request.path, body)
        if reply.delay_before:
            await asyncio.sleep(reply.delay_before)
        if reply.hold_until is not None and not reply.hold_after:
            await asyncio.to_thread(reply.hold_until.wait, 60)
        if reply.refuse:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if reply.sse is None and reply.raw is None and not reply.forever:
            payload = reply.json if reply.json is not None else {}
            return web.json_response(payload, status=reply.status, headers=reply.headers)
        response = web.StreamResponse(
            status=reply.status, headers={"content-type": "text/event-stream", **reply.headers}
        )
        await response.prepare(request)
        try:
            if reply.stall_after_headers:
                await asyncio.sleep(reply.stall_after_headers)
            if reply.raw is not None:
                await response.write(reply.raw)
            events = list(reply.sse or [])
            sent = 0
            while events or reply.forever:
                item = events.pop(0) if events else chunk(" tick")
                if reply.close_after is not None and sent >= reply.close_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(self.frame(item))
                sent += 1
                if reply.hold_until is not None and sent == reply.hold_after:
                    await asyncio.to_thread(reply.hold_until.wait, 60)
                if reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects.append(time.monotonic())
            raise
        return response
