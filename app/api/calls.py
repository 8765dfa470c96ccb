"""One work request as the hot routes see it, and their answer, whichever layer received the request.

Chat completions and embeddings are served both by their Litestar routes and by app.api.fastpath (the
same paths without the framework's per-request machinery); both build a `Call`, run the same route
function and turn the `Reply` into bytes on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.accounts.auth import Principal
    from app.api.resources import Resources

RATE_HEADERS = "heytoken.rate_headers"
"""Where admission leaves the x-ratelimit-* headers in the ASGI scope: every answer of an admitted
request carries them, the errors raised after admission too."""


@dataclass(slots=True)
class Call:
    res: Resources
    principal: Principal
    scope: Any
    """The ASGI scope (the rate headers go there)."""
    method: str
    path: str
    idempotency_key: str | None
    cache: bytes | None = None
    """The `x-heytoken-cache` header (app/cache/policy.py), as the edge found it."""
    cache_control: bytes | None = None

    def set_rate_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.scope[RATE_HEADERS] = headers


@dataclass(slots=True)
class Reply:
    """A JSON answer (`body`), or a server-sent event stream (`stream`) when that is set."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None
