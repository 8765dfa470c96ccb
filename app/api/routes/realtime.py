"""WS /v1/realtime (the OpenAI Realtime protocol) and POST /v1/realtime/client_secrets.

The socket is served as a plain ASGI app ahead of the framework (app.api.fastpath.Gateway hands it
every WebSocket scope of these paths): everything that can refuse the session — the key or client
secret, the model, the limits, the balance, the upstream — is decided before the handshake is
answered, so a refusal is an HTTP status with the OpenAI error envelope (the ASGI
`websocket.http.response` extension), never a bare 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.types import Receive, Scope, Send

from app.accounts.auth import Principal
from app.api.api_docs import docs
from app.api.deps import resources_of
from app.api.resources import Resources, get_resources
from app.channels.routing import resolve
from app.core.edge import convert, decode_object, single_header
from app.core.errors import GatewayError, unexpected_error
from app.realtime import service
from app.realtime.client_secrets import (
    ClientSecretObject,
    ClientSecretRequest,
    ExpiresAfter,
    is_client_secret,
    mint,
    open_secret,
)
from app.realtime.session import Ending, Session, Traffic

PATHS = frozenset({"/v1/realtime"})
INSECURE_KEY = "openai-insecure-api-key."
log = logging.getLogger("heytoken.realtime")


@post(
    "/realtime/client_secrets",
    status_code=200,
    operation_id="createRealtimeClientSecret",
    summary="Create a realtime client secret",
    description="A short-lived secret for one model, usable only to open /v1/realtime (e.g. from a browser).",
    responses=docs(ClientSecretObject, 404),
)
async def create_client_secret(request: Request[Any, Any, Any], data: JSONBody[ClientSecretRequest]) -> dict[str, Any]:
    res = resources_of(request)
    body = convert(decode_object(await request.body()), ClientSecretRequest)
    model = body.session.model
    catalog = res.catalog.current
    resolve(catalog, model)
    catalog.price_for(model)
    api_key = (request.headers.get("authorization") or "").partition(" ")[2].strip()
    expires = body.expires_after or ExpiresAfter()
    settings = res.settings
    secret = mint(
        settings.resolved_secret_key(), api_key, model, expires.seconds, settings.realtime_client_secret_max_seconds
    )
    return {
        "value": secret.value,
        "expires_at": secret.expires_at,
        "session": {"type": "realtime", "object": "realtime.session", "model": model},
    }


def _offered(scope: Scope) -> list[str]:
    header = single_header(scope["headers"], b"sec-websocket-protocol") or ""
    return [p.strip() for p in header.split(",") if p.strip()]


async def authenticate(res: Resources, scope: Scope, model: str | None) -> tuple[Principal, str | None]:
    """The caller, from `Authorization: Bearer …` or a browser's `openai-insecure-api-key.…`
    subprotocol; either may carry an API key or a client secret. Returns the subprotocol to accept."""
    authorization = single_header(scope["headers"], b"authorization")
    offered = _offered(scope)
    chosen = None
    for proto in offered:
        if proto.startswith(INSECURE_KEY):
            authorization = authorization or "Bearer " + proto[len(INSECURE_KEY) :]
        elif chosen is None and proto == "realtime":
            chosen = proto
    if chosen is None and offered:
        # A browser's socket fails unless the server picks one of the subprotocols it offered.
        chosen = next((p for p in offered if not p.startswith(INSECURE_KEY)), None)
    token = (authorization or "").partition(" ")[2].strip()
    if is_client_secret(token):
        authorization = "Bearer " + open_secret(res.settings.resolved_secret_key(), token, model)
    client = scope.get("client")
    return await res.auth.authenticate(authorization, client[0] if client else None), chosen


class RealtimeSockets:
    """The ASGI app of WS /v1/realtime, and the sessions open in this process (drained on shutdown)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.sessions: set[Session] = set()
        self.traffic = Traffic()
        self._idle = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        res = get_resources(self.state)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        model = (query.get("model") or [""])[0] or None
        try:
            principal, subprotocol = await authenticate(res, scope, model)
            opened = await service.open_session(res, principal, model)
        except GatewayError as exc:
            await refuse(send, scope, exc)
            return
        except Exception as exc:
            await refuse(send, scope, unexpected_error(exc, scope["path"]))
            return
        ending = Ending(1011, "internal_error", "gateway")
        session = Session(receive, send, opened.upstream, opened.meter, res.settings, self.traffic)
        self.sessions.add(session)
        self.traffic.open_sessions += 1
        self.traffic.sessions_total += 1
        try:
            headers = [(b"x-request-id", opened.job_id.encode())]
            await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers})
            ending = await session.run()
        except Exception:
            log.exception("realtime.session_failed job=%s", opened.job_id)
            await send({"type": "websocket.close", "code": 1011, "reason": "internal_error"})
        finally:
            try:
                await service.finish(res, opened, ending)
            finally:
                self.sessions.discard(session)
                self.traffic.open_sessions -= 1
                if not self.sessions:
                    self._idle.set()

    async def drain(self, grace: float = 10.0) -> None:
        """Shutdown: every open session is told, closed with 1001 and booked before the process exits."""
        for session in list(self.sessions):
            session.drain()
        if self.sessions:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)


async def refuse(send: Send, scope: Scope, exc: GatewayError) -> None:
    body = msgspec.json.encode(exc.body())
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        # The server cannot answer the handshake with a status of its own: close before accepting.
        await send({"type": "websocket.close", "code": 1008, "reason": (exc.code or "refused")[:120]})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    start: Any = {"type": "websocket.http.response.start", "status": exc.status_code, "headers": headers}
    await send(start)
    end: Any = {"type": "websocket.http.response.body", "body": body}
    await send(end)
