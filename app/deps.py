"""Request-level plumbing shared by the routes: the API-key guard and typed accessors."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.accounts.auth import Principal
from app.resources import Resources, get_resources


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of every /v1 route: 401 in the OpenAI envelope unless a live key is presented."""
    resources = get_resources(connection.app.state)
    principal = await resources.auth.authenticate(connection.headers.get("authorization"))
    connection.scope["principal"] = principal  # type: ignore[typeddict-unknown-key]


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal = connection.scope["principal"]  # type: ignore[typeddict-item]
    return principal


def resources_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Resources:
    return get_resources(connection.app.state)
