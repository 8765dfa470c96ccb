"""The one upstream HTTP stack (app/core/http.py): the chat path's aiohttp API and the workers' httpx
API over the same transport fail the same way, and nothing else builds a client of its own."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from app.core.http import create_upstream_client, create_upstream_session, create_webhook_client
from app.core.settings import Settings
from app.core.upstream_errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable
from app.providers import common, media_http

APP = Path(__file__).resolve().parents[2] / "app"
WORKERS = APP.parent / "workers"


async def _serve(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/x"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def hangs_up() -> AsyncIterator[str]:
    """Reads the request, then closes without a byte of answer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async for url in _serve(handler):
        yield url


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """Accepts and reads, then never answers."""
    stop = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await stop.wait()
        writer.close()

    async for url in _serve(handler):
        yield url
    stop.set()


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1/x"


async def _via_aiohttp(settings: Settings, url: str, read_timeout: float) -> UpstreamUnavailable:
    async with create_upstream_session(settings) as session:
        limits = aiohttp.ClientTimeout(total=None, connect=2, sock_connect=2, sock_read=read_timeout)
        with pytest.raises(UpstreamUnavailable) as info:
            await common.post(session, url, b"{}", {"content-type": "application/json"}, limits)
    return info.value


async def _via_httpx(settings: Settings, url: str, read_timeout: float) -> UpstreamUnavailable:
    async with create_upstream_client(settings) as client:
        with pytest.raises(UpstreamUnavailable) as info:
            await media_http.call(client, "POST", url, timeout_s=read_timeout, content=b"{}")
    return info.value


@pytest.mark.parametrize("via", [_via_aiohttp, _via_httpx], ids=["aiohttp-api", "httpx-api"])
async def test_both_apis_map_each_transport_failure_to_the_same_error(
    via: Callable[[Settings, str, float], Awaitable[UpstreamUnavailable]],
    settings: Settings,
    hangs_up: str,
    silent: str,
) -> None:
    # httpx-aiohttp's own table calls a dropped connection a ConnectTimeout; ours must not.
    dropped = await via(settings, hangs_up, 5.0)
    assert type(dropped) is UpstreamConnectError, dropped
    refused = await via(settings, _closed_port_url(), 5.0)
    assert type(refused) is UpstreamConnectError, refused
    slow = await via(settings, silent, 0.2)
    assert type(slow) is UpstreamTimeout and slow.reason == "read", (slow, getattr(slow, "reason", None))


async def test_webhook_client_never_reuses_a_connection(settings: Settings) -> None:
    """A connection opened for one host name must not carry a delivery for another name that shares
    its address: the server below would keep it open, the client closes it."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        while not reader.at_eof():
            try:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            connections[-1] += 1
            writer.write(b"HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n")
            await writer.drain()
        writer.close()

    async for url in _serve(handler):
        async with create_webhook_client(settings) as http:
            for _ in range(3):
                response = await http.post(url, content=b"{}")
                assert response.status_code == 204
    assert connections == [1, 1, 1]


def test_no_module_builds_an_http_client_of_its_own() -> None:
    """One stack: clients are made in app/core/http.py only (sessions, transports, httpx clients)."""
    pattern = re.compile(
        r"aiohttp\.(ClientSession|TCPConnector)\(|httpx\.(AsyncClient|Client|AsyncHTTPTransport)\(|AiohttpTransport\("
    )
    offenders = [
        f"{path.relative_to(APP.parent)}:{n}"
        for root in (APP, WORKERS)
        for path in sorted(root.rglob("*.py"))
        if path != APP / "core" / "http.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], offenders
