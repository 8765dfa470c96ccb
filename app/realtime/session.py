"""One realtime session: the client's socket relayed to the upstream and back, metered and bounded.

Two loops run until either side ends: client → upstream (each frame decoded once at the edge; the
output cap enforced; the rolling hold checked before a response may start) and upstream → client
(each `response.done` captured before it is passed on). Whatever ends the session — either side
closing, an upstream failure, a timeout, the balance, a shutdown — the other loop is stopped, the
upstream closed, the hold released, the stream slot freed and the job row finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app.core.errors import GatewayError, InsufficientQuota
from app.core.settings import Settings
from app.realtime.billing import Meter
from app.realtime.schemas import (
    ClientEvent,
    ProtocolError,
    RealtimeUsage,
    encode,
    error_event,
    parse_client,
    peek_server,
)
from app.realtime.upstream import RealtimeUpstream, UpstreamClosed

NORMAL, GOING_AWAY, UPSTREAM_FAILED, SERVICE_RESTART = 1000, 1001, 1011, 1012
CANCEL_GRACE_SECONDS = 2.0
"""How long a session whose client left waits for the upstream's last response.done (to bill it)."""


@dataclass(slots=True)
class Traffic:
    """Frames and bytes each way, for every session of the process (the metrics read it)."""

    open_sessions: int = 0
    sessions_total: int = 0
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(slots=True)
class Ending:
    code: int
    reason: str
    by: str
    """"client", "upstream" or "gateway"."""


class _End(Exception):
    def __init__(self, ending: Ending, event: bytes | None = None) -> None:
        self.ending, self.event = ending, event


@dataclass(slots=True, eq=False)
class Session:
    receive: Any
    send: Any
    upstream: RealtimeUpstream
    meter: Meter
    settings: Settings
    traffic: Traffic
    started: float = field(default_factory=time.monotonic)
    ending: Ending | None = None
    _money: asyncio.Lock = field(default_factory=asyncio.Lock)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _drain: Ending | None = None
    _responding: bool = False
    """A response.created went to the client and its response.done has not."""
    _response_done: asyncio.Event = field(default_factory=asyncio.Event)
    _client_gone: bool = False

    def drain(self, reason: str = "server_shutdown") -> None:
        """Ask the session to end now (the web process is shutting down)."""
        self._drain = Ending(GOING_AWAY, reason, "gateway")
        self._stop.set()

    async def run(self) -> Ending:
        tasks = [
            asyncio.create_task(self._client_loop()),
            asyncio.create_task(self._upstream_loop()),
            asyncio.create_task(self._stopped()),
        ]
        ending = Ending(UPSTREAM_FAILED, "internal_error", "gateway")
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=self.settings.realtime_max_session_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                ending = Ending(NORMAL, "max_duration", "gateway")
                await self._send_text(
                    error_event("The session reached its maximum duration.", "session_expired", "invalid_request_error")
                )
            else:
                task = done.pop()
                exc = task.exception()
                if isinstance(exc, _End):
                    ending = exc.ending
                    if exc.event is not None:
                        await self._send_text(exc.event)
                elif exc is not None:
                    raise exc
                elif self._drain is not None:
                    ending = self._drain
                    await self._send_text(
                        error_event("The gateway is restarting; reconnect.", "server_shutdown", "server_error")
                    )
            if ending.by == "client" or ending.code == SERVICE_RESTART:
                self._client_gone = True
                await self._finish_response(tasks[1])
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.ending = ending
        if ending.by != "client" and ending.code != SERVICE_RESTART:
            await self._close(ending.code, ending.reason)
        return ending

    async def _stopped(self) -> None:
        await self._stop.wait()

    async def _finish_response(self, upstream_loop: asyncio.Task[None]) -> None:
        """The client left while a response was being generated: the upstream has produced (and will
        bill) part of it. Ask it to stop and wait briefly for its `response.done`, to capture it."""
        if not self._responding or upstream_loop.done():
            return
        with contextlib.suppress(Exception):
            await self.upstream.send(ClientEvent("response.cancel"), encode({"type": "response.cancel"}).decode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._response_done.wait(), CANCEL_GRACE_SECONDS)

    # -- client → upstream ----------------------------------------------------------------------
    async def _client_loop(self) -> None:
        idle = self.settings.realtime_idle_timeout_seconds
        while True:
            try:
                message = await asyncio.wait_for(self.receive(), idle)
            except TimeoutError:
                raise _End(
                    Ending(NORMAL, "idle_timeout", "gateway"),
                    error_event("The session was idle too long.", "idle_timeout", "invalid_request_error"),
                ) from None
            kind = message["type"]
            if kind == "websocket.disconnect":
                code = int(message.get("code") or 1005)
                if code == SERVICE_RESTART:
                    # The web server is shutting down: it sent the client this close frame itself.
                    raise _End(Ending(code, "server_shutdown", "gateway"))
                raise _End(Ending(code, str(message.get("reason") or ""), "client"))
            frame = message.get("text")
            if frame is None:
                frame = message.get("bytes") or b""
            self.traffic.frames_in += 1
            self.traffic.bytes_in += len(frame)
            if len(frame) > self.settings.realtime_max_frame_bytes:
                await self._send_text(error_event("The event is too large.", "event_too_large"))
                continue
            try:
                event = parse_client(frame)
            except ProtocolError as exc:
                await self._send_text(error_event(exc.message, exc.code, event_id=exc.event_id))
                continue
            event, frame = self._capped(event, frame)
            await self._meter_input(event, frame)
            try:
                await self.upstream.send(event, frame)
            except UpstreamClosed as exc:
                raise self._upstream_failed(exc) from exc

    def _capped(self, event: ClientEvent, frame: str | bytes) -> tuple[ClientEvent, str | bytes]:
        """The output cap the hold is sized for is the one the upstream gets: a client's larger (or
        "inf") `max_output_tokens` is lowered to it; a lower one of the session's lowers the holds."""
        holder = "session" if event.type == "session.update" else "response" if event.type == "response.create" else ""
        if not holder:
            return event, frame
        body: dict[str, Any] | None = getattr(event, holder)
        if body is None or "max_output_tokens" not in body:
            return event, frame
        asked = body["max_output_tokens"]
        cap = self.settings.realtime_max_output_tokens if holder == "session" else self.meter.cap
        if isinstance(asked, int) and 0 < asked <= cap:
            if holder == "session":
                self.meter.cap = asked
            return event, frame
        if holder == "session":
            self.meter.cap = cap
        raw = msgspec.json.decode(frame)
        raw[holder] = {**body, "max_output_tokens": cap}
        new_frame = encode(raw).decode()
        return parse_client(new_frame), new_frame

    async def _meter_input(self, event: ClientEvent, frame: str | bytes) -> None:
        meter = self.meter
        if event.type == "input_audio_buffer.append":
            pcm_bytes = len(event.audio or "") * 3 // 4
            rate = self.settings.realtime_audio_tokens_per_second
            meter.add_input(-(-pcm_bytes * rate // 48_000))  # PCM16 at 24 kHz: 48,000 bytes a second
        elif event.type in ("conversation.item.create", "session.update"):
            meter.add_input(len(frame))  # a token is never shorter than one byte
        elif event.type in ("response.create", "input_audio_buffer.commit"):
            if event.type == "response.create":
                meter.add_input(len(frame))
            # The hold must cover the response this may start, before the upstream hears of it.
            async with self._money:
                try:
                    await meter.ensure_hold()
                except GatewayError as exc:
                    raise _money_end(exc) from exc

    # -- upstream → client ----------------------------------------------------------------------
    async def _upstream_loop(self) -> None:
        while True:
            try:
                frame = await self.upstream.recv()
            except UpstreamClosed as exc:
                raise self._upstream_failed(exc) from exc
            try:
                peek = peek_server(frame)
            except msgspec.DecodeError:
                continue  # not an event of the protocol: nothing a client could read either
            if peek.type == "response.created":
                self._responding = True
                self._response_done.clear()
            elif peek.type == "response.done" and peek.response is not None:
                self._responding = False
                async with self._money:
                    await self.meter.capture(RealtimeUsage.of(peek.response.usage))
                    await self._send_text(frame)
                    self._response_done.set()
                    try:
                        await self.meter.ensure_hold()
                    except GatewayError as exc:
                        raise _money_end(exc) from exc
                continue
            await self._send_text(frame)

    def _upstream_failed(self, exc: UpstreamClosed) -> _End:
        if exc.code in (NORMAL, GOING_AWAY):
            ending = Ending(exc.code, exc.reason or "upstream_closed", "upstream")
        else:
            ending = Ending(UPSTREAM_FAILED, "upstream_error", "upstream")
        message = f"The upstream realtime connection ended (code {exc.code}: {exc.reason or 'no reason'})."
        return _End(ending, error_event(message, "upstream_error", "server_error"))

    # -- the client's socket --------------------------------------------------------------------
    async def _send_text(self, frame: str | bytes) -> None:
        if self._client_gone:
            return
        text = frame if isinstance(frame, str) else frame.decode()
        self.traffic.frames_out += 1
        self.traffic.bytes_out += len(text)
        try:
            await self.send({"type": "websocket.send", "text": text})
        except Exception as exc:  # the server's error for a socket the client already closed
            self._client_gone = True
            raise _End(Ending(1006, "client_disconnected", "client")) from exc

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:  # the client is already gone: nothing to tell it
            return


def _money_end(exc: GatewayError) -> _End:
    """The next response cannot be held for: the balance ran out (a clean close), or the limiter is
    unreachable (money is never spent unchecked)."""
    if isinstance(exc, InsufficientQuota):
        message = exc.message.replace("this request", "the next response")
        return _End(Ending(NORMAL, "insufficient_quota", "gateway"), error_event(message, exc.type, exc.type))
    code = exc.code or "server_error"
    return _End(Ending(UPSTREAM_FAILED, code, "gateway"), error_event(exc.message, code, exc.type))
