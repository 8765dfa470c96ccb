"""The one upstream HTTP stack: every outgoing call goes over aiohttp's transport, configured here,
and every transport failure is mapped here, once, into the ProviderError tree.

- Chat and embeddings (the hot path) use aiohttp's `ClientSession` API directly. This is the one
  measured exception to "httpx's API for upstream calls": in issue #8 httpx's API layer cost ~170 µs
  a request on top of aiohttp (httpx-aiohttp), more than aiohttp's whole client (~95 µs), and would
  add ~23 % to a one-connection chat request (p50 0.73 ms).
- The media adapters and webhook deliveries (workers, a few calls a second) use httpx's API over
  aiohttp's transport (httpx-aiohttp), on sessions built by the same factory. httpx's own transport
  collapses under concurrency (577 req/s at 32 connections against 5.8k over aiohttp).
"""

from __future__ import annotations

import ssl
import sys
from typing import TYPE_CHECKING

import aiohttp

from app.core.settings import Settings
from app.core.upstream_errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable

if TYPE_CHECKING:
    import httpx


def create_upstream_session(
    settings: Settings, *, verify: ssl.SSLContext | bool = True, keep_alive: bool = True
) -> aiohttp.ClientSession:
    """The one pooled session per web process for chat and embeddings (call inside the event loop).

    Keep-alive, at most `upstream_max_connections` connections, no environment proxies, no cookies, no
    redirects (each request passes `allow_redirects=False`). Each adapter passes its channel's own timeouts per
    request (app.channels.policy); these defaults bound any other call, with no read longer than a
    whole stream may last.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_max_connections,
        limit_per_host=0,
        force_close=not keep_alive,
        ssl=verify,
    )
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
    """The httpx client of the media adapters (images, videos): httpx's API over a session of the
    factory above."""
    # Imported here: only the workers build httpx clients, and the web process imports this module
    # for the session above (httpx and its CLI's dependencies cost every web process ~6 MB).
    import httpx
    from httpx_aiohttp import AiohttpTransport

    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout,
        read=settings.upstream_stream_total_timeout,
        write=30.0,
        pool=settings.upstream_connect_timeout,
    )
    return httpx.AsyncClient(
        # A factory, not a session: aiohttp binds a session to the running loop, which the
        # transport's first request is made in.
        transport=AiohttpTransport(client=lambda: create_upstream_session(settings)),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def create_webhook_client(settings: Settings, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The client that delivers webhooks, to an address the SSRF guard checked (app/core/ssrf.py).

    The caller connects to the checked IP address and passes the host name in the `sni_hostname`
    extension (httpx-aiohttp hands it to aiohttp as `server_hostname`: TLS SNI, and the certificate
    checked against the name). No keep-alive, so a connection opened for one host name is never
    reused for another that shares its address; no environment proxies; redirects never followed.
    """
    import httpx  # here, not at the top: see create_upstream_client
    from httpx_aiohttp import AiohttpTransport

    budget = settings.webhook_timeout_seconds
    return httpx.AsyncClient(
        transport=AiohttpTransport(client=lambda: create_upstream_session(settings, verify=verify, keep_alive=False)),
        timeout=httpx.Timeout(budget, connect=min(5.0, budget)),
        follow_redirects=False,
        trust_env=False,
    )


TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What aiohttp raises for a failed connection, a dropped one, a garbled answer or a timeout."""


def transport_error(exc: BaseException) -> UpstreamUnavailable:
    """The one mapping of a transport failure, from aiohttp's API or httpx's over it.

    httpx-aiohttp re-raises aiohttp's errors as httpx's (its table calls a dropped connection a
    `ConnectTimeout`), so the aiohttp error it chained is read when there is one."""
    cause = exc.__cause__ if isinstance(exc.__cause__, TRANSPORT_ERRORS) else exc
    name = type(cause).__name__
    httpx = sys.modules.get("httpx")  # never imported for this: the web process does not load it
    if isinstance(cause, aiohttp.ConnectionTimeoutError) or (
        httpx is not None and isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout)
    ):
        return UpstreamTimeout(f"Upstream timed out connecting: {name}", reason="connect")
    if isinstance(cause, TimeoutError) or (httpx is not None and isinstance(cause, httpx.TimeoutException)):
        return UpstreamTimeout(f"Upstream timed out: {name}", reason="read")
    if isinstance(cause, aiohttp.ClientConnectionError) or (
        httpx is not None and isinstance(cause, httpx.ConnectError | httpx.RemoteProtocolError)
    ):
        # Refused, reset, or closed before an answer (ServerDisconnectedError).
        return UpstreamConnectError(f"Upstream connection failed: {name}")
    return UpstreamUnavailable(f"Upstream connection failed: {name}")
