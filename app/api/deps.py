"""Request-level plumbing shared by the routes: the API-key check and typed accessors."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection

from app.accounts.auth import Principal
from app.api.calls import RATE_HEADERS, Call, Reply
from app.api.resources import Resources, get_resources
from app.api.streaming import ClosingStream
from app.core.edge import single_header
from app.core.errors import AuthenticationFailed

SSE_MEDIA_TYPE = "text/event-stream"


async def require_api_key(request: Request[Any, Any, Any]) -> None:
    """before_request hook of every /v1 route: 401 in the OpenAI envelope unless a live key is presented.
    Reads (GET) are admitted here against the per-key reads limit; work requests are admitted by their
    handler, once the body says what they may cost. A hook rather than a guard: Litestar calls every
    guard with a copy of the route handler, a measurable cost on each request."""
    resources = get_resources(request.app.state)
    authorization = single_header(request.scope["headers"], b"authorization")
    client = request.scope.get("client")
    principal = await resources.auth.authenticate(authorization, client[0] if client else None)
    request.scope["principal"] = principal  # type: ignore[typeddict-unknown-key]
    if request.scope["method"] == "GET":
        try:
            set_rate_headers(request, await resources.gate.admit_read(principal))
        except AuthenticationFailed:
            resources.auth.forget(authorization)
            raise


def set_rate_headers(connection: ASGIConnection[Any, Any, Any, Any], headers: list[tuple[bytes, bytes]]) -> None:
    connection.scope[RATE_HEADERS] = headers  # type: ignore[literal-required]


async def add_rate_headers(message: Any, scope: Any) -> None:
    """before_send hook: every answer of an admitted request carries its x-ratelimit-* headers
    (successes, errors and streams alike)."""
    if message["type"] == "http.response.start":
        extra = scope.get(RATE_HEADERS)
        if extra:
            message["headers"] = [*message.get("headers", ()), *extra]


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal = connection.scope["principal"]  # type: ignore[typeddict-item]
    return principal


def resources_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Resources:
    return get_resources(connection.app.state)


def call_of(request: Request[Any, Any, Any]) -> Call:
    """The route functions' view of a Litestar request (app.api.calls)."""
    return Call(
        resources_of(request),
        principal_of(request),
        request.scope,
        request.method,
        request.url.path,
        request.headers.get("idempotency-key"),
        _latin1(request.headers.get("x-heytoken-cache")),
        _latin1(request.headers.get("cache-control")),
    )


def _latin1(value: str | None) -> bytes | None:
    return None if value is None else value.encode("latin-1")


def to_response(reply: Reply) -> Response[Any]:
    if reply.stream is not None:
        return ClosingStream(reply.stream, status_code=reply.status, media_type=SSE_MEDIA_TYPE, headers=reply.headers)
    return Response(content=reply.body, status_code=reply.status, media_type="application/json", headers=reply.headers)
