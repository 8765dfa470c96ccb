"""The admin API's guard: a separate operator token (HEYTOKEN_ADMIN_TOKEN), never an sk-ht- key."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.api.resources import get_resources
from app.core.edge import single_header
from app.core.errors import AuthenticationFailed, NotFound


async def require_admin_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    token = get_resources(connection.app.state).settings.admin_token
    if token is None:
        # An instance without an admin token has no admin API at all.
        raise NotFound(f"Unknown path: {connection.url.path}", code="not_found")
    authorization = single_header(connection.scope["headers"], b"authorization")
    scheme, _sep, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.get_secret_value().encode()
    ):
        raise AuthenticationFailed(
            "The admin API needs 'Authorization: Bearer <HEYTOKEN_ADMIN_TOKEN>'.", code="invalid_admin_token"
        )
