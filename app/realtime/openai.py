"""A realtime channel of provider `openai`: the client's frames relayed to the upstream socket and
back, unchanged but for the output cap. The upstream key is sent by the gateway, never to the client."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from app.channels.catalog import Route
from app.core.settings import Settings
from app.core.upstream_errors import (
    ProviderError,
    UpstreamConnectError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.realtime.schemas import ClientEvent, encode, peek_server
from app.realtime.upstream import UpstreamClosed

DEFAULT_BASE = "https://api.openai.com/v1"


def ws_url(base: str | None, path: str, query: dict[str, str]) -> str:
    parts = urlsplit(base or DEFAULT_BASE)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode(query), ""))


def refused(exc: BaseException, channel: str) -> ProviderError:
    """A failed upstream handshake, as the routing's error tree reads it (which decides on failover)."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        message = f"The realtime upstream of channel '{channel}' refused the connection with HTTP {status}."
        if status == 429:
            return UpstreamRateLimited(message, status=status)
        if status >= 500 or status in (408, 409):
            return UpstreamUnavailable(message, status=status)
        return UpstreamRejected(message, status=status)
    if isinstance(exc, TimeoutError):
        message = f"The realtime upstream of channel '{channel}' did not answer in time."
        return UpstreamTimeout(message, reason="connect")
    return UpstreamConnectError(f"Could not connect to the realtime upstream of channel '{channel}': {exc!r}")


async def open_socket(url: str, headers: dict[str, str], settings: Settings, channel: str) -> ClientConnection:
    try:
        return await asyncio.wait_for(
            connect(
                url,
                additional_headers=headers,
                max_size=settings.realtime_max_frame_bytes,
                compression=None,
                open_timeout=None,
                user_agent_header="heytoken-gateway",
            ),
            settings.realtime_connect_timeout_seconds,
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise refused(exc, channel) from exc


class SocketUpstream:
    """Shared by the relays over a websockets client connection."""

    ws: ClientConnection

    async def recv_raw(self) -> str | bytes:
        try:
            return await self.ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            raise UpstreamClosed(exc.rcvd.reason if exc.rcvd is not None else "connection lost", code) from exc

    async def send_raw(self, frame: str | bytes) -> None:
        try:
            await self.ws.send(frame)
        except ConnectionClosed as exc:
            raise UpstreamClosed("the upstream closed the connection", 1011) from exc

    async def close(self) -> None:
        await self.ws.close()


class OpenAIRelay(SocketUpstream):
    def __init__(self, ws: ClientConnection, cap: int) -> None:
        self.ws = ws
        self.cap = cap
        self._swallow_update = True
        """The gateway's own session.update (the cap) is answered by a session.updated the client did
        not ask for: that one is not relayed."""

    @classmethod
    async def open(cls, route: Route, settings: Settings) -> OpenAIRelay:
        url = route.options.get("realtime_url") or ws_url(route.base_url, "/realtime", {"model": route.upstream_model})
        headers = {"Authorization": f"Bearer {route.api_key}"} if route.api_key else {}
        ws = await open_socket(str(url), headers, settings, route.channel_name)
        relay = cls(ws, settings.realtime_max_output_tokens)
        await relay.send_raw(
            encode({"type": "session.update", "session": {"type": "realtime", "max_output_tokens": relay.cap}})
        )
        return relay

    async def send(self, event: ClientEvent, frame: str | bytes) -> None:
        await self.send_raw(frame)

    async def recv(self) -> str | bytes:
        frame = await self.recv_raw()
        if self._swallow_update and peek_server(frame).type == "session.updated":
            self._swallow_update = False
            return await self.recv()
        return frame
