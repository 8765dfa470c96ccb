"""POST chat/completions and embeddings: their one pipeline, without Litestar's per-request machinery.

Litestar keeps the route declarations (the OpenAPI document, any other method); this ASGI app answers
every POST to these paths itself, ahead of the framework's entry point (`Gateway`), and does what the
framework's layers do for them: read the body up to `max_body_bytes` (413 past it), check
the API key (as app.api.deps.require_api_key), run the same route function (app.api.calls), send the answer
with the admission's rate headers (app.api.deps.add_rate_headers), and render errors in the OpenAI
envelope (app.core.errors). Routing, the Request and Response objects, the kwargs model, the hooks and the
exception middleware cost the framework more CPU per request than these few steps (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from anyio import CancelScope
from litestar import Litestar
from litestar.datastructures import State
from litestar.types import ASGIApp, Receive, Scope, Send

from app.api.calls import RATE_HEADERS, Call, Reply
from app.api.resources import get_resources
from app.api.routes.chat import chat_completion
from app.api.routes.embeddings import embedding
from app.core.edge import single_header
from app.core.errors import GatewayError, InvalidRequest, PayloadTooLarge, unexpected_error

Route = Callable[[Call, bytes], Awaitable[Reply]]
ROUTES: dict[str, Route] = {
    "/v1/chat/completions": chat_completion,
    "/v1/embeddings": embedding,
}
_ENCODE = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")


class _ClientGone(Exception):
    """The client disconnected before its request body arrived: nobody to answer."""


class FastPath:
    """The ASGI app of the paths in ROUTES (POST only: see `Gateway.__call__`)."""

    def __init__(self, state: State, max_body_bytes: int) -> None:
        self.state = state
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_template"] = scope["path"]
        await self._serve(ROUTES[scope["path"]], scope, receive, send)

    async def _serve(self, route: Route, scope: Any, receive: Receive, send: Send) -> None:
        idempotency_key = length = cache = cache_control = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"x-heytoken-cache":
                cache = value
            elif name == b"cache-control":
                cache_control = value
        try:
            authorization = single_header(scope["headers"], b"authorization")
            raw = await self._body(receive, length)
            res = get_resources(self.state)
            client = scope.get("client")
            principal = await res.auth.authenticate(authorization, client[0] if client else None)
            scope["principal"] = principal
            call = Call(res, principal, scope, "POST", scope["path"], idempotency_key, cache, cache_control)
            reply = await route(call, raw)
        except _ClientGone:
            return
        except GatewayError as exc:
            await _send_json(send, scope, exc.status_code, _ENCODE(exc.body()), exc.headers)
            return
        except Exception as exc:
            error = unexpected_error(exc, scope["path"])
            await _send_json(send, scope, error.status_code, _ENCODE(error.body()), error.headers)
            return
        if reply.stream is None:
            await _send_json(send, scope, reply.status, reply.body, reply.headers)
        else:
            await _send_stream(send, receive, scope, reply)

    async def _body(self, receive: Receive, length: bytes | None) -> bytes:
        limit = self.max_body
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                raise InvalidRequest(f"Invalid content-length: {length.decode('latin-1')!r}") from None
            if announced > limit:
                raise PayloadTooLarge("Request body is larger than this server accepts.")
        chunks: list[bytes] = []
        total = 0
        while True:
            message: Any = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk: bytes = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge("Request body is larger than this server accepts.")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Gateway(Litestar):
    """Litestar, with POSTs to the hot paths handed to `fast` before the framework's entry point (which
    wraps `send` for the hooks and sets up the scope, work the fast path does not need)."""

    fast: ASGIApp | None = None
    realtime: ASGIApp | None = None
    """WS /v1/realtime (app.api.routes.realtime): it answers refused handshakes with an HTTP status."""
    realtime_paths: frozenset[str] = frozenset()
    unversioned: frozenset[str] = frozenset()
    """The first path segments of the /v1 API (`chat`, `models`…), which also answer without the prefix
    (`/chat/completions`). The path is rewritten here instead of routed by a second router without the
    prefix, which built every API route twice: 0.8 MB of each web process (issue #23)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            path = scope["path"]
            if not path.startswith("/v1/"):
                end = path.find("/", 1)
                if (path[1:end] if end > 0 else path[1:]) in self.unversioned:
                    scope["path"] = "/v1" + path
        if scope["type"] == "websocket" and self.realtime is not None and scope["path"] in self.realtime_paths:
            await self.realtime(scope, receive, send)
            return
        fast = self.fast
        if fast is not None and scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path in ROUTES or (path.endswith("/") and path.rstrip("/") in ROUTES):
                # Every POST to these paths (with a trailing slash too, which the framework's router
                # would take) is served here: one pipeline for them.
                scope["path"] = path.rstrip("/")
                await fast(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _headers(scope: Any, fixed: tuple[bytes, bytes], body_length: int | None, headers: dict[str, str]) -> list[Any]:
    out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k != "content-length"]
    out.append(fixed)
    if body_length is not None:
        out.append((b"content-length", b"%d" % body_length))
    rate = scope.get(RATE_HEADERS)
    if rate:
        out.extend(rate)
    return out


async def _send_json(send: Send, scope: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
    start = {"type": "http.response.start", "status": status, "headers": _headers(scope, _JSON, len(body), headers)}
    await send(start)  # type: ignore[arg-type]
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_stream(send: Send, receive: Receive, scope: Any, reply: Reply) -> None:
    """Relay the event stream; a client that goes away cancels it at once (a silent upstream would
    otherwise hold it until its next chunk), and the iterator is always closed, so is the upstream."""
    iterator = reply.stream
    assert iterator is not None
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        start = {
            "type": "http.response.start",
            "status": reply.status,
            "headers": _headers(scope, _SSE, None, reply.headers),
        }
        await send(start)  # type: ignore[arg-type]
        async for chunk in iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
    finally:
        watcher.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with CancelScope(shield=True):
                await aclose()
