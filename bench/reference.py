"""The bare reference: a pass-through proxy in Litestar with the gateway's own upstream client, nothing else.

No auth, no validation, no job log, no metrics: the floor the gateway is compared against. Served the
way the Procfile serves the gateway:

    BENCH_UPSTREAM=http://127.0.0.1:PORT/v1 uvicorn --factory --loop uvloop --http httptools \\
        --no-access-log --log-level warning --port 8001 bench.reference:create_app

`BENCH_REFERENCE_CLIENT` picks the upstream client: `aiohttp` (default, the gateway's: aiohttp's own
client, one session, keep-alive, no environment proxies), `httpx-aiohttp` (httpx's API over the
httpx-aiohttp transport, the gateway's client before issue #8) or `httpx` (httpx's default transport).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
UPSTREAM_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-reference"}
Forward = Callable[[str, bytes, bool], Awaitable[Response[Any]]]


def httpx_forwarder(upstream: str, client: httpx.AsyncClient) -> Forward:
    async def forward(path: str, body: bytes, stream: bool) -> Response[Any]:
        if stream:
            request = client.build_request("POST", upstream + path, content=body, headers=UPSTREAM_HEADERS)
            response = await client.send(request, stream=True)

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in response.aiter_raw():
                        yield chunk
                finally:
                    await response.aclose()

            return Stream(
                relay(), status_code=response.status_code, media_type="text/event-stream", headers=SSE_HEADERS
            )
        response = await client.post(upstream + path, content=body, headers=UPSTREAM_HEADERS)
        return Response(response.content, status_code=response.status_code, media_type="application/json")

    return forward


def aiohttp_forwarder(upstream: str, session: aiohttp.ClientSession) -> Forward:
    async def forward(path: str, body: bytes, stream: bool) -> Response[Any]:
        response = await session.post(upstream + path, data=body, headers=UPSTREAM_HEADERS)
        if stream:

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in response.content.iter_any():
                        yield chunk
                finally:
                    response.release()

            return Stream(relay(), status_code=response.status, media_type="text/event-stream", headers=SSE_HEADERS)
        async with response:
            content = await response.read()
        return Response(content, status_code=response.status, media_type="application/json")

    return forward


def create_app() -> Litestar:
    upstream = os.environ["BENCH_UPSTREAM"].rstrip("/")
    kind = os.environ.get("BENCH_REFERENCE_CLIENT", "aiohttp")
    forwarders: list[Forward] = []

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if kind == "aiohttp":
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000), trust_env=False)
            forwarders.append(aiohttp_forwarder(upstream, session))
            close: Callable[[], Awaitable[None]] = session.close
        else:
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=None)
            transport: httpx.AsyncBaseTransport = (
                httpx.AsyncHTTPTransport(limits=limits)
                if kind == "httpx"
                else AiohttpTransport(limits=limits, trust_env=False)
            )
            client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(600.0, connect=5.0), trust_env=False)
            forwarders.append(httpx_forwarder(upstream, client))
            close = client.aclose
        try:
            yield
        finally:
            await close()

    def is_stream(body: bytes) -> bool:
        return b'"stream":true' in body.replace(b" ", b"")

    @post("/v1/chat/completions", status_code=200)
    async def chat(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await request.body()
        return await forwarders[0]("/chat/completions", body, is_stream(body))

    @post("/v1/embeddings", status_code=200)
    async def embeddings(request: Request[Any, Any, Any]) -> Response[Any]:
        return await forwarders[0]("/embeddings", await request.body(), False)

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[chat, embeddings, healthz], lifespan=[lifespan], logging_config=None, openapi_config=None
    )
