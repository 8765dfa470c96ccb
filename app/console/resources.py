"""What the console uses of the web process's resources (app/api/resources.py passes its own), and
the request-level accessors of every console page."""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
from litestar import Request
from litestar.connection import ASGIConnection
from redis.asyncio import Redis

from app.billing.limits.service import Gate
from app.billing.operations import Operations
from app.channels.catalog import CatalogCache
from app.channels.cooldowns import CooldownBoard
from app.console.sessions import SignInThrottle, Viewer
from app.core.db import SessionMaker
from app.core.errors import NotFound
from app.core.queue import Sender
from app.core.settings import Settings
from app.core.ssrf import UrlGuard
from storage import ObjectStore

VIEWER = "console_viewer"


class ConsoleResources(Protocol):
    settings: Settings
    sessionmaker: SessionMaker
    redis: Redis
    gate: Gate
    upstream: aiohttp.ClientSession
    store: ObjectStore
    catalog: CatalogCache
    url_guard: UrlGuard
    cooldowns: CooldownBoard
    sender: Sender


def resources(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleResources:
    res: ConsoleResources = connection.app.state.resources
    return res


def operations(connection: ASGIConnection[Any, Any, Any, Any]) -> Operations:
    res = resources(connection)
    return Operations(res.sessionmaker, res.gate)


def throttle(connection: ASGIConnection[Any, Any, Any, Any]) -> SignInThrottle:
    res = resources(connection)
    s = res.settings
    return SignInThrottle(res.redis, s.redis_prefix, s.console_signin_limit, s.console_signin_window_seconds)


def viewer(request: Request[Any, Any, Any]) -> Viewer:
    found: Viewer = request.scope[VIEWER]  # type: ignore[literal-required]
    return found


def account_id(request: Request[Any, Any, Any]) -> str:
    """The signed-in person's account; the operator has none, and reads account pages as unknown."""
    ident = viewer(request).account_id
    if ident is None:
        raise NotFound("The operator has no account pages.", code="not_found")
    return ident


def is_https(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    base = resources(connection).settings.public_base_url
    return connection.url.scheme == "https" or base.startswith("https://")
