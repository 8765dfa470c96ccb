"""The per-process upstream clients, and the webhook delivery client.

Chat and embeddings (the hot path) go over aiohttp's own `ClientSession`: measured in issue #8, httpx's
API layer costs ~170 µs a request on top of aiohttp (httpx-aiohttp), which is more than aiohttp's
whole client (~95 µs). The media adapters (job workers, a few calls a minute) keep httpx's API over
aiohttp's transport: httpx's own transport collapses under concurrency (577 req/s at 32 connections
against 5.8k over aiohttp).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import aiohttp

from app.core.settings import Settings

if TYPE_CHECKING:
    import httpx


def create_upstream_session(settings: Settings) -> aiohttp.ClientSession:
    """The one pooled session per web process for chat and embeddings (call inside the event loop).

    Keep-alive, at most `upstream_max_connections` connections, no environment proxies, no cookies, no
    redirects (each request passes `allow_redirects=False`). Each adapter passes its channel's own timeouts per
    request (app.channels.policy); these defaults bound any other call, with no read longer than a
    whole stream may last.
    """
    connector = aiohttp.TCPConnector(limit=settings.upstream_max_connections, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.upstream_connect_timeout,
        sock_connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_stream_total_timeout,
    )
    # No cookie jar: the session is shared by every tenant, so a cookie an upstream sets (Cloudflare's
    # `__cf_bm` in front of api.openai.com) must not ride along on other requests.
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    )


def create_upstream_client(settings: Settings) -> httpx.AsyncClient:
    """The httpx client of the media adapters (images, videos): httpx's API over aiohttp's transport."""
    # Imported here: only the workers build httpx clients, and the web process imports this module
    # for the session above (httpx and its CLI's dependencies cost every web process ~6 MB).
    import httpx
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=settings.upstream_max_connections, max_keepalive_connections=None)
    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout,
        read=settings.upstream_stream_total_timeout,
        write=30.0,
        pool=settings.upstream_connect_timeout,
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits, trust_env=False),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def create_webhook_client(settings: Settings, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The client that delivers webhooks, to an address the SSRF guard checked (app/core/ssrf.py).

    httpx's own transport, not aiohttp's: webhooks are not the hot path, and httpcore's handling of
    the `sni_hostname` extension (TLS to an IP address, certificate checked against the name) is the
    documented one. No keep-alive, so a connection opened for one host name is never reused for
    another that shares its address; no environment proxies; redirects are never followed.
    """
    import httpx  # here, not at the top: see create_upstream_client

    budget = settings.webhook_timeout_seconds
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(
            verify=verify, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        ),
        timeout=httpx.Timeout(budget, connect=min(5.0, budget)),
        follow_redirects=False,
        trust_env=False,
    )
