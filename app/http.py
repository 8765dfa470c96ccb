"""The one pooled upstream HTTP client per process, and the webhook delivery client.

httpx's API over aiohttp's transport: httpx's own transport collapses under concurrency (measured in
issue #8: 577 req/s at 32 connections against 5.8k over aiohttp), so the transport is aiohttp's.
"""

from __future__ import annotations

import ssl

import httpx
from httpx_aiohttp import AiohttpTransport

from app.observability.timing import TimedTransport
from app.settings import Settings


def create_upstream_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=settings.upstream_max_connections, max_keepalive_connections=None)
    # Each adapter passes its channel's own timeouts per request (app.channels.policy); these are the
    # defaults for any other call, with no read longer than a whole stream may last.
    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout,
        read=settings.upstream_stream_total_timeout,
        write=30.0,
        pool=settings.upstream_connect_timeout,
    )
    transport: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits, trust_env=False)
    if settings.overhead_header or settings.metrics_enabled:
        # Adds the upstream wait to the request's timing, so the overhead header can leave it out.
        transport = TimedTransport(transport)
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def create_webhook_client(settings: Settings, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The client that delivers webhooks, to an address the SSRF guard checked (app/ssrf.py).

    httpx's own transport, not aiohttp's: webhooks are not the hot path, and httpcore's handling of
    the `sni_hostname` extension (TLS to an IP address, certificate checked against the name) is the
    documented one. No keep-alive, so a connection opened for one host name is never reused for
    another that shares its address; no environment proxies; redirects are never followed.
    """
    budget = settings.webhook_timeout_seconds
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(
            verify=verify, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        ),
        timeout=httpx.Timeout(budget, connect=min(5.0, budget)),
        follow_redirects=False,
        trust_env=False,
    )
